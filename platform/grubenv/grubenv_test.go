package grubenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	env := Env{"slot": "A", "try": "", "trial_version": "v1.2.3+4"}
	b, err := env.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != Size || !strings.HasPrefix(string(b), header+"slot=A\ntrial_version=v1.2.3+4\ntry=\n#") {
		t.Fatalf("block %q", b[:80])
	}
	got, err := Parse(b)
	if err != nil || len(got) != 3 || got["slot"] != "A" || got["trial_version"] != "v1.2.3+4" {
		t.Fatalf("parsed %v %v", got, err)
	}
}

func TestRefusals(t *testing.T) {
	for _, env := range []Env{{"a\nb": "1"}, {"a": "x\ny"}, {"a=b": "1"}, {"a": `c:\`}, {"big": strings.Repeat("x", Size)}} {
		if _, err := env.Encode(); err == nil {
			t.Errorf("%q encoded", env)
		}
	}
	if _, err := Parse([]byte("short")); err == nil {
		t.Error("short block parsed")
	}
	b := make([]byte, Size)
	if _, err := Parse(b); err == nil {
		t.Error("block without header parsed")
	}
}

// TestGrubEditenvReads checks the bytes against GRUB's own tool, when it
// is installed (it is where the image is built).
func TestGrubEditenvReads(t *testing.T) {
	tool, err := exec.LookPath("grub-editenv")
	if err != nil {
		t.Skip("grub-editenv not installed")
	}
	b, _ := Env{"slot": "B", "try": "A"}.Encode()
	p := filepath.Join(t.TempDir(), "grubenv")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tool, p, "list").CombinedOutput()
	if err != nil || string(out) != "slot=B\ntry=A\n" {
		t.Fatalf("grub-editenv list: %q %v", out, err)
	}
	if out, err := exec.Command(tool, p, "set", "try=").CombinedOutput(); err != nil {
		t.Fatalf("%s %v", out, err)
	}
	b, _ = os.ReadFile(p)
	env, err := Parse(b)
	if err != nil || env["try"] != "" || env["slot"] != "B" {
		t.Fatalf("after grub-editenv: %v %v", env, err)
	}
}

// FuzzParse: any block is parsed or refused; what parses encodes back
// to a block that parses to the same variables.
func FuzzParse(f *testing.F) {
	b, _ := Env{"slot": "A", "try": "B"}.Encode()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := Parse(b)
		if err != nil {
			return
		}
		out, err := env.Encode()
		if err != nil {
			return // e.g. a name with '#', which Parse reads as a comment line's rest
		}
		again, err := Parse(out)
		if err != nil || len(again) != len(env) {
			t.Fatalf("round trip: %v %v -> %v", env, err, again)
		}
	})
}
