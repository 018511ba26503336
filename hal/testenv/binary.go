package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
	buildOut  []byte
)

// SipedgeBinary builds the real sipedge binary (static, as `make build`
// does) once per test process and returns its path. Tests run it as a
// user would: `sipedge run -config FILE`, `sipedge ctl ...`.
func SipedgeBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		var mod []byte
		mod, buildErr = exec.Command("go", "env", "GOMOD").Output()
		if buildErr != nil {
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(mod)))
		dir, err := os.MkdirTemp("", "sipedge-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "sipedge")
		cmd := exec.Command("go", "build", "-trimpath", "-o", buildPath, "./daemon")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("build sipedge: %v\n%s", buildErr, buildOut)
	}
	return buildPath
}
