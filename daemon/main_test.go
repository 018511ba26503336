package main

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/internal/daemontest"
	"github.com/sipedge/sipedge/hal/testenv"
)

// newDaemon prepares a single-box daemon (in dir, if given) with SIP on
// a free loopback port and no web page.
func newDaemon(t *testing.T, dir ...string) *daemontest.Daemon {
	d := daemontest.New(t, dir...)
	d.WriteConfig(fmt.Sprintf(`node: {name: test-node, profile: single, data_dir: %s}
log: {level: info, format: json}
sip:
  listen: ["udp:127.0.0.1:%d"]
`, d.DataDir(), testenv.FreePort(t)))
	return d
}

func TestBinaryIsStatic(t *testing.T) {
	f, err := elf.Open(testenv.SipedgeBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("binary has an ELF interpreter: it is dynamically linked")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("binary needs shared libraries: %v", libs)
	}
	out, _ := exec.Command(testenv.MustHaveExec(t, "file"), testenv.SipedgeBinary(t)).Output()
	if !strings.Contains(string(out), "statically linked") {
		t.Errorf("file says: %s", out)
	}
}

func TestCtlRoundTrip(t *testing.T) {
	d := newDaemon(t).Start()

	out, _, code := d.Ctl("status")
	if code != 0 || !strings.Contains(out, "test-node") || !strings.Contains(out, "single") {
		t.Fatalf("ctl status = %d\n%s", code, out)
	}
	var st struct {
		Node, Profile string
		PID           int
		Store         struct{ OK bool }
	}
	d.CtlJSON(&st, "status")
	if st.Node != "test-node" || st.PID != d.PID() || !st.Store.OK {
		t.Errorf("status = %+v", st)
	}
	out, _, _ = d.Ctl("events")
	if !strings.Contains(out, "daemon.start") {
		t.Errorf("events lack daemon.start:\n%s", out)
	}
	out, _, _ = d.Ctl("config", "show")
	if !strings.Contains(out, "dialog_ttl: 12h0m0s") || !strings.Contains(out, "node:") {
		t.Errorf("config show lacks defaults:\n%s", out)
	}
	// Exit codes mean something.
	tests := []struct {
		args []string
		code int
	}{
		{[]string{"log", "level", "loud"}, 2},
		{[]string{"log", "level"}, 2},
		{[]string{"no", "such", "command"}, 2},
		{[]string{"-socket", filepath.Join(d.Dir, "none.sock"), "status"}, 3},
		{[]string{"log", "level", "debug"}, 0},
	}
	for _, tt := range tests {
		if _, e, code := d.Ctl(tt.args...); code != tt.code {
			t.Errorf("ctl %v: exit %d, want %d (%s)", tt.args, code, tt.code, e)
		}
	}
	out, _, _ = d.Ctl("-json", "status")
	if !strings.Contains(out, `"log_level": "DEBUG"`) {
		t.Errorf("log level not changed at runtime:\n%s", out)
	}
	var rt struct{ Goroutines int }
	if d.CtlJSON(&rt, "runtime"); rt.Goroutines <= 0 {
		t.Errorf("runtime: %+v", rt)
	}
	prof := filepath.Join(d.Dir, "allocs.pprof")
	if _, e, code := d.Ctl("debug", "profile", "allocs", "0", prof); code != 0 {
		t.Errorf("debug profile: %d %s", code, e)
	} else if st, err := os.Stat(prof); err != nil || st.Size() == 0 {
		t.Errorf("profile not written: %v", err)
	}
	info, err := os.Stat(d.Socket())
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("socket: %v mode %v, want 0600", err, info.Mode().Perm())
	}
	if err := d.Stop(syscall.SIGTERM, 15*time.Second); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}

func TestSecondDaemonOnSameDataDirFails(t *testing.T) {
	first := newDaemon(t).Start()
	// A second configuration: other ports, the same data dir.
	second := newDaemon(t)
	b, _ := os.ReadFile(second.Config)
	os.WriteFile(second.Config, bytes.ReplaceAll(b, []byte(second.DataDir()), []byte(first.DataDir())), 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, second.Bin, "run", "-config", second.Config).CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("second daemon: err=%v ctx=%v\n%s", err, ctx.Err(), out)
	}
	if !strings.Contains(string(out), "another sipedge daemon") {
		t.Errorf("second daemon's message does not say why:\n%s", out)
	}
}

func TestBadConfigFailsWithEveryProblem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte("node:\n  nmae: x\nsip:\n  listen: [\"udp:127.0.0.1:0\"]\n  algorithm: random\n"), 0o644)
	out, err := exec.Command(testenv.SipedgeBinary(t), "run", "-config", path).CombinedOutput()
	if err == nil {
		t.Fatal("daemon started on a bad file")
	}
	for _, want := range []string{path + ":2: node.nmae: unknown key", path + ":4: sip.listen[0]: \"127.0.0.1:0\": port 0 is not allowed", path + ":5: sip.algorithm: \"random\" is not one of"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// ctl config validate says the same without a daemon.
	out, err = exec.Command(testenv.SipedgeBinary(t), "ctl", "config", "validate", path).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "node.nmae: unknown key") {
		t.Errorf("config validate: %v\n%s", err, out)
	}
}

func TestSIGHUPReload(t *testing.T) {
	d := newDaemon(t).Start()
	good, _ := os.ReadFile(d.Config)

	// An invalid file is refused and the old configuration stays.
	os.WriteFile(d.Config, append(good, []byte("bogus_key: 1\n")...), 0o644)
	d.Signal(syscall.SIGHUP)
	daemontest.WaitFor(t, 5*time.Second, "reload refusal logged", func() bool { return strings.Contains(d.Log.String(), "reload refused") })
	if out, _, code := d.Ctl("status"); code != 0 || !strings.Contains(out, "test-node") {
		t.Fatalf("daemon unhealthy after a refused reload: %d %s", code, out)
	}
	// Events reach the store from a background writer: wait for it.
	daemontest.WaitFor(t, 5*time.Second, "refused reload in the event log", func() bool {
		out, _, _ := d.Ctl("events")
		return strings.Contains(out, "config.reload_failed")
	})

	// A valid change applies.
	os.WriteFile(d.Config, bytes.Replace(good, []byte("level: info"), []byte("level: debug"), 1), 0o644)
	d.Signal(syscall.SIGHUP)
	daemontest.WaitFor(t, 5*time.Second, "log level debug after reload", func() bool {
		out, _, _ := d.Ctl("-json", "status")
		return strings.Contains(out, `"log_level": "DEBUG"`)
	})
}

func TestRuntimeChangesSurviveRestart(t *testing.T) {
	d := newDaemon(t).Start()
	d.Stop(syscall.SIGTERM, 15*time.Second)
	d = newDaemon(t, d.Dir).Start()
	out, _, _ := d.Ctl("events", "100")
	if n := strings.Count(out, "daemon.start"); n != 2 {
		t.Errorf("event log after restart has %d daemon.start, want 2:\n%s", n, out)
	}
	if n := strings.Count(out, "daemon.stop"); n != 1 {
		t.Errorf("event log after restart has %d daemon.stop, want 1:\n%s", n, out)
	}
}
