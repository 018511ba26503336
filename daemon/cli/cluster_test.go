package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClusterKeygen: `ctl cluster keygen PATH` works without a daemon,
// writes a 0600 key, and refuses to replace one; without PATH or a
// cluster: section it says what to give.
func TestClusterKeygen(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "cluster.key")
	run := func(args ...string) (int, string) {
		var out bytes.Buffer
		env := Env{Args: args, Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}
		return runCtl(context.Background(), env), out.String()
	}
	if code, out := run("-socket", filepath.Join(dir, "none.sock"), "cluster", "keygen", key); code != 0 || !strings.Contains(out, "mode 0600") {
		t.Fatalf("keygen: exit %d: %s", code, out)
	}
	fi, err := os.Stat(key)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != 65 {
		t.Fatalf("key file %v, %v", fi, err)
	}
	first, _ := os.ReadFile(key)
	if code, out := run("cluster", "keygen", key); code != 1 || !strings.Contains(out, "exists") {
		t.Errorf("second keygen: exit %d: %s", code, out)
	}
	if again, _ := os.ReadFile(key); !bytes.Equal(again, first) {
		t.Error("the key was replaced")
	}
	cfg := filepath.Join(dir, "single.yaml")
	os.WriteFile(cfg, []byte("node: {name: one, profile: single, data_dir: "+dir+"}\nsip: {listen: [\"udp:127.0.0.1:5060\"]}\n"), 0o600)
	if code, out := run("-config", cfg, "cluster", "keygen"); code != 2 || !strings.Contains(out, "no cluster: section") {
		t.Errorf("keygen without a cluster: section: exit %d: %s", code, out)
	}
	if code, _ := run("cluster", "keygen", "a", "b"); code != 2 {
		t.Errorf("two paths: exit %d", code)
	}
}
