package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadClusterKey: the previous release checked only a key's length
// (16 bytes); a 16-character password in a world-readable file passed.
// Now group/other permissions and guessable keys are reported as weak,
// and a key under 16 bytes is refused as before.
func TestReadClusterKey(t *testing.T) {
	dir := t.TempDir()
	random := bytes.Repeat([]byte{0}, 32)
	for i := range random {
		random[i] = byte(i*37 + 11) // 32 distinct bytes, not printable
	}
	for _, tc := range []struct {
		name string
		key  []byte
		mode os.FileMode
		weak []string // substrings, one per expected problem
		err  bool
	}{
		{"hex 64, 0600", []byte("9f1c3a7be2d84056a1f0c9e37b26d5e48c1a0f9b3e7d2c6a5b4f8e1d0c3b2a19\n"), 0o600, nil, false},
		{"binary 32, 0400", random, 0o400, nil, false},
		{"hex 64, 0644", []byte("9f1c3a7be2d84056a1f0c9e37b26d5e48c1a0f9b3e7d2c6a5b4f8e1d0c3b2a19"), 0o644, []string{"readable by group or others (mode 0644)"}, false},
		{"hex 64, 0640", []byte("9f1c3a7be2d84056a1f0c9e37b26d5e48c1a0f9b3e7d2c6a5b4f8e1d0c3b2a19"), 0o640, []string{"mode 0640"}, false},
		{"password 16", []byte("Summer2026!edgeA"), 0o600, []string{"16 printable characters"}, false},
		{"password 31", []byte("netns-test-key-0123456789abcdef"), 0o600, []string{"31 printable characters"}, false},
		{"pattern 40", []byte(strings.Repeat("ab", 20)), 0o600, []string{"only 2 distinct"}, false},
		{"both", []byte("Summer2026!edgeA"), 0o666, []string{"mode 0666", "printable"}, false},
		{"short", []byte("0123456789"), 0o600, nil, true},
		{"spaces only", []byte("   \n\n"), 0o600, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			if err := os.WriteFile(p, tc.key, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, tc.mode); err != nil {
				t.Fatal(err)
			}
			key, weak, err := ReadClusterKey(p)
			if tc.err {
				if err == nil || !errors.Is(err, ErrClusterKey) {
					t.Fatalf("err %v, want a refusal", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(key, bytes.TrimSpace(tc.key)) {
				t.Errorf("key %q", key)
			}
			if len(weak) != len(tc.weak) {
				t.Fatalf("weak %q, want %d problems like %q", weak, len(tc.weak), tc.weak)
			}
			for i, w := range tc.weak {
				if !strings.Contains(weak[i], w) {
					t.Errorf("problem %d %q, want it to say %q", i, weak[i], w)
				}
			}
		})
	}
	if _, _, err := ReadClusterKey(filepath.Join(dir, "absent")); err == nil || !strings.Contains(err.Error(), "keygen") {
		t.Errorf("absent key: %v, want a refusal naming keygen", err)
	}
}

// TestGenerateClusterKey: a new key is mode 0600, passes every check,
// differs each time, and never replaces an existing file.
func TestGenerateClusterKey(t *testing.T) {
	dir := t.TempDir()
	p1, p2 := filepath.Join(dir, "sub", "k1"), filepath.Join(dir, "k2")
	for _, p := range []string{p1, p2} {
		if err := GenerateClusterKey(p); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %04o, want 0600", p, fi.Mode().Perm())
		}
		key, weak, err := ReadClusterKey(p)
		if err != nil || len(weak) != 0 || len(key) != 2*ClusterKeyBytes {
			t.Errorf("%s: %d bytes, weak %q, err %v", p, len(key), weak, err)
		}
	}
	k1, _ := os.ReadFile(p1)
	k2, _ := os.ReadFile(p2)
	if bytes.Equal(k1, k2) {
		t.Error("two keys are the same")
	}
	if err := GenerateClusterKey(p1); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("second keygen to %s: %v, want a refusal", p1, err)
	}
	if again, _ := os.ReadFile(p1); !bytes.Equal(again, k1) {
		t.Error("the existing key was changed")
	}
}

// TestCheckClusterKey: `config validate` reports a weak key file against
// cluster.key_file.
func TestCheckClusterKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cluster.key")
	if err := os.WriteFile(p, []byte("Summer2026!edgeA"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &Config{Source: "box.yaml", Cluster: &Cluster{KeyFile: p}}
	ps := c.CheckClusterKey()
	if len(ps) != 2 || ps[0].Path != "cluster.key_file" || !strings.HasPrefix(ps.Error(), "box.yaml: cluster.key_file: ") {
		t.Errorf("problems %v", ps)
	}
	if (&Config{}).CheckClusterKey() != nil {
		t.Error("problems without a cluster: section")
	}
}
