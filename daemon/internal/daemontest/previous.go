package daemontest

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sipedge/sipedge/hal/testenv"
)

// PreviousRelease is the firmware a box runs before the update under
// test: a pair is updated one box at a time, so the new binary must pair
// with this one (heartbeats, replication). Move it forward when a
// release is cut.
const PreviousRelease = "3c0e3bfb7f09d00f1f10c032721d4180ca8a4186"

var (
	prevMu    sync.Mutex
	prevBuilt = map[string]string{}
)

// PreviousBinary returns the sipedge binary of PreviousRelease, built
// from the repository's history (`git archive`, then `go build` as
// `make build` does) and cached by commit under
// $SIPEDGE_TEST_CACHE (default: the user cache dir)/sipedge-prev/COMMIT.
// Without git or the commit (a shallow clone) the test is skipped, or
// fails under SIPEDGE_TEST_STRICT=1.
func PreviousBinary(t testing.TB) string { t.Helper(); return ReleaseBinary(t, PreviousRelease) }

// ReleaseBinary is PreviousBinary for any commit.
func ReleaseBinary(t testing.TB, commit string) string {
	t.Helper()
	git := testenv.MustHaveExec(t, "git")
	prevMu.Lock()
	defer prevMu.Unlock()
	if p := prevBuilt[commit]; p != "" {
		return p
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatalf("previous release: %v", err)
	}
	if out, err := exec.Command(git, "-C", root, "cat-file", "-e", commit+"^{commit}").CombinedOutput(); err != nil {
		testenv.Missing(t, "previous release %s is not in the repository's history (a shallow clone? git fetch --unshallow): %v %s", commit, err, bytes.TrimSpace(out))
		return ""
	}
	cache := os.Getenv("SIPEDGE_TEST_CACHE")
	if cache == "" {
		if cache, err = os.UserCacheDir(); err != nil {
			cache = os.TempDir()
		}
	}
	dir := filepath.Join(cache, "sipedge-prev", commit)
	bin := filepath.Join(dir, "sipedge")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		prevBuilt[commit] = bin
		return bin
	}
	if err := buildRelease(git, root, commit, dir, bin); err != nil {
		t.Fatalf("previous release %s: %v", commit, err)
	}
	prevBuilt[commit] = bin
	return bin
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the sipedge module")
	}
	return filepath.Dir(mod), nil
}

// buildRelease extracts commit's tree into a temporary directory beside
// dir, builds it, and renames the binary into place (two test processes
// building at once both end with a whole binary).
func buildRelease(git, root, commit, dir, bin string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	src, err := os.MkdirTemp(dir, "src-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(src)
	arch := exec.Command(git, "-C", root, "archive", "--format=tar", commit)
	var stderr bytes.Buffer
	arch.Stderr = &stderr
	out, err := arch.StdoutPipe()
	if err != nil {
		return err
	}
	if err := arch.Start(); err != nil {
		return fmt.Errorf("git archive: %w", err)
	}
	xerr := untar(out, src)
	io.Copy(io.Discard, out)
	if err := arch.Wait(); err != nil {
		return fmt.Errorf("git archive: %w: %s", err, stderr.Bytes())
	}
	if xerr != nil {
		return fmt.Errorf("extract: %w", xerr)
	}
	tmp := filepath.Join(src, "sipedge.bin")
	build := exec.Command("go", "build", "-trimpath", "-o", tmp, "./daemon")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return os.Rename(tmp, bin)
}

// untar writes the regular files and directories of a git archive
// under dir (git archive holds nothing else that a build needs).
func untar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(h.Name)
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("unsafe path %q", h.Name)
		}
		p := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o755|0o600)
			if err != nil {
				return err
			}
			_, cerr := io.Copy(f, tr)
			if err := errors.Join(cerr, f.Close()); err != nil {
				return err
			}
		}
	}
}
