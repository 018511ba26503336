package main

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sipedge/sipedge/hal/testenv"
)

// daemon is one `sipedge run` started by a test.
type daemon struct {
	t      *testing.T
	bin    string
	cfg    string
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error
}

func writeConfig(t *testing.T, dir, extra string) string {
	t.Helper()
	port := testenv.FreePort(t)
	cfg := fmt.Sprintf(`node: {name: test-node, profile: single, data_dir: %s}
log: {level: info, format: json}
sip:
  listen: ["udp:127.0.0.1:%d"]
%s`, filepath.Join(dir, "data"), port, extra)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func startDaemon(t *testing.T, cfg string) *daemon {
	t.Helper()
	d := &daemon{t: t, bin: testenv.SipedgeBinary(t), cfg: cfg, stderr: &syncBuffer{}, done: make(chan error, 1)}
	d.cmd = exec.Command(d.bin, "run", "-config", cfg)
	d.cmd.Stderr = d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			d.cmd.Process.Kill()
			<-d.done
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, _, code := d.ctl("status"); code == 0 {
			return d
		}
		select {
		case err := <-d.done:
			t.Fatalf("daemon exited at start: %v\n%s", err, d.stderr)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("daemon did not answer on its socket within 10s\n%s", d.stderr)
	return nil
}

func (d *daemon) ctl(args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	cmd := exec.Command(d.bin, append([]string{"ctl", "-config", d.cfg}, args...)...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		d.t.Fatalf("ctl %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

func (d *daemon) stop(sig syscall.Signal, within time.Duration) error {
	d.t.Helper()
	d.cmd.Process.Signal(sig)
	select {
	case err := <-d.done:
		return err
	case <-time.After(within):
		d.t.Fatalf("daemon did not stop within %v after %v\n%s", within, sig, d.stderr)
	}
	return nil
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
	if path, err := exec.LookPath("file"); err == nil {
		out, _ := exec.Command(path, testenv.SipedgeBinary(t)).Output()
		if !strings.Contains(string(out), "statically linked") {
			t.Errorf("file says: %s", out)
		}
	}
}

func TestCtlRoundTrip(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, writeConfig(t, dir, ""))

	out, _, code := d.ctl("status")
	if code != 0 || !strings.Contains(out, "test-node") || !strings.Contains(out, "single") {
		t.Fatalf("ctl status = %d\n%s", code, out)
	}
	out, _, code = d.ctl("-json", "status")
	var st struct {
		Node, Profile string
		PID           int
		Store         struct{ OK bool }
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 {
		t.Fatalf("ctl -json status: %v %d\n%s", err, code, out)
	}
	if st.Node != "test-node" || st.PID != d.cmd.Process.Pid || !st.Store.OK {
		t.Errorf("status = %+v", st)
	}
	out, _, _ = d.ctl("events")
	if !strings.Contains(out, "daemon.start") {
		t.Errorf("events lack daemon.start:\n%s", out)
	}
	out, _, _ = d.ctl("config", "show")
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
		{[]string{"-socket", filepath.Join(dir, "none.sock"), "status"}, 3},
		{[]string{"log", "level", "debug"}, 0},
	}
	for _, tt := range tests {
		if _, e, code := d.ctl(tt.args...); code != tt.code {
			t.Errorf("ctl %v: exit %d, want %d (%s)", tt.args, code, tt.code, e)
		}
	}
	out, _, _ = d.ctl("-json", "status")
	if !strings.Contains(out, `"log_level": "DEBUG"`) {
		t.Errorf("log level not changed at runtime:\n%s", out)
	}
	out, _, _ = d.ctl("-json", "runtime")
	var rt struct{ Goroutines int }
	if json.Unmarshal([]byte(out), &rt); rt.Goroutines <= 0 {
		t.Errorf("runtime: %s", out)
	}
	prof := filepath.Join(dir, "allocs.pprof")
	if _, e, code := d.ctl("debug", "profile", "allocs", "0", prof); code != 0 {
		t.Errorf("debug profile: %d %s", code, e)
	} else if st, err := os.Stat(prof); err != nil || st.Size() == 0 {
		t.Errorf("profile not written: %v", err)
	}
	info, err := os.Stat(filepath.Join(dir, "data", "sipedge.sock"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("socket: %v mode %v, want 0600", err, info.Mode().Perm())
	}
	if err := d.stop(syscall.SIGTERM, 15*time.Second); err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, d.stderr)
	}
}

func TestSecondDaemonOnSameDataDirFails(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "")
	startDaemon(t, cfg)
	cfg2 := writeConfig(t, t.TempDir(), "")
	// Same data dir, different ports.
	b, _ := os.ReadFile(cfg2)
	b = bytes.Replace(b, []byte(filepath.Dir(filepath.Dir(cfg2))), []byte(filepath.Dir(filepath.Dir(cfg))), 1)
	os.WriteFile(cfg2, bytes.ReplaceAll(b, []byte(filepath.Join(filepath.Dir(cfg2), "data")), []byte(filepath.Join(dir, "data"))), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, testenv.SipedgeBinary(t), "run", "-config", cfg2).CombinedOutput()
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
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "")
	d := startDaemon(t, cfg)
	good, _ := os.ReadFile(cfg)

	// An invalid file is refused and the old configuration stays.
	os.WriteFile(cfg, append(good, []byte("bogus_key: 1\n")...), 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 5*time.Second, func() bool { return strings.Contains(d.stderr.String(), "reload refused") }, "reload refusal logged")
	if out, _, code := d.ctl("status"); code != 0 || !strings.Contains(out, "test-node") {
		t.Fatalf("daemon unhealthy after a refused reload: %d %s", code, out)
	}
	// Events reach the store from a background writer: wait for it.
	waitFor(t, 5*time.Second, func() bool {
		out, _, _ := d.ctl("events")
		return strings.Contains(out, "config.reload_failed")
	}, "refused reload in the event log")

	// A valid change applies.
	os.WriteFile(cfg, bytes.Replace(good, []byte("level: info"), []byte("level: debug"), 1), 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 5*time.Second, func() bool {
		out, _, _ := d.ctl("-json", "status")
		return strings.Contains(out, `"log_level": "DEBUG"`)
	}, "log level debug after reload")
}

func TestRuntimeChangesSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "")
	d := startDaemon(t, cfg)
	d.stop(syscall.SIGTERM, 15*time.Second)
	d = startDaemon(t, cfg)
	out, _, _ := d.ctl("events", "100")
	if n := strings.Count(out, "daemon.start"); n != 2 {
		t.Errorf("event log after restart has %d daemon.start, want 2:\n%s", n, out)
	}
	if n := strings.Count(out, "daemon.stop"); n != 1 {
		t.Errorf("event log after restart has %d daemon.stop, want 1:\n%s", n, out)
	}
}

// syncBuffer is a bytes.Buffer safe for the exec copier and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitFor(t *testing.T, within time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for: %s", within, what)
}
