// Package daemontest runs the real sipedge binary for tests, as a user
// would: `sipedge run -config FILE` in a temporary directory, driven with
// `sipedge ctl`. It starts, waits for, logs and stops the process it
// started, by its PID.
package daemontest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sipedge/sipedge/hal/testenv"
)

// Daemon is one sipedge daemon started by a test.
type Daemon struct {
	t      testing.TB
	Bin    string // the sipedge binary
	Dir    string // holds config.yaml and data/
	Config string // the configuration file
	Log    *Buffer

	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// New prepares a daemon in a fresh temporary directory (or in dir, to
// reuse an earlier daemon's data). Write its configuration with
// WriteConfig, then Start it.
func New(t testing.TB, dir ...string) *Daemon {
	t.Helper()
	d := &Daemon{t: t, Bin: testenv.SipedgeBinary(t), Log: &Buffer{}}
	if len(dir) > 0 {
		d.Dir = dir[0]
	} else {
		d.Dir = t.TempDir()
	}
	d.Config = filepath.Join(d.Dir, "config.yaml")
	return d
}

// DataDir is where the configuration should put node.data_dir.
func (d *Daemon) DataDir() string { return filepath.Join(d.Dir, "data") }

// Socket is the control socket under DataDir (the default).
func (d *Daemon) Socket() string { return filepath.Join(d.DataDir(), "sipedge.sock") }

// WriteConfig writes the configuration file.
func (d *Daemon) WriteConfig(yaml string) {
	d.t.Helper()
	if err := os.WriteFile(d.Config, []byte(yaml), 0o600); err != nil {
		d.t.Fatal(err)
	}
}

// Start runs `sipedge run -config FILE` (prefixed by wrap, e.g. "ip netns
// exec NS") and waits until `sipedge ctl status` answers. The daemon is
// stopped when the test ends; its log is shown if the test failed.
func (d *Daemon) Start(wrap ...string) *Daemon {
	d.t.Helper()
	args := append(append([]string{}, wrap...), d.Bin, "run", "-config", d.Config)
	d.cmd = exec.Command(args[0], args[1:]...)
	d.cmd.Stdout, d.cmd.Stderr = d.Log, d.Log
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.done = make(chan struct{})
	go func() { d.err = d.cmd.Wait(); close(d.done) }()
	d.t.Cleanup(func() {
		if !d.Exited() {
			d.Stop(syscall.SIGTERM, 15*time.Second)
		}
		if d.t.Failed() {
			log := d.Log.String()
			if len(log) > 20000 {
				log = "...\n" + log[len(log)-20000:]
			}
			d.t.Logf("daemon log (%s, tail):\n%s", d.Dir, log)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, _, code := d.Ctl("status"); code == 0 {
			return d
		}
		select {
		case <-d.done:
			d.t.Fatalf("daemon exited at start: %v\n%s", d.err, d.Log)
		case <-time.After(50 * time.Millisecond):
		}
	}
	d.t.Fatalf("daemon did not answer on its control socket within 20s\n%s", d.Log)
	return d
}

// PID is the daemon's process id.
func (d *Daemon) PID() int { return d.cmd.Process.Pid }

// RSSKB is the daemon's resident set size now (VmRSS, kB; 0 when it
// cannot be read).
func (d *Daemon) RSSKB() int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.PID()))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// Signal sends sig to the daemon.
func (d *Daemon) Signal(sig os.Signal) { d.cmd.Process.Signal(sig) }

// Exited reports whether the daemon has exited.
func (d *Daemon) Exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// Done is closed when the daemon exits.
func (d *Daemon) Done() <-chan struct{} { return d.done }

// Stop sends sig and waits up to within for the exit (then kills it and
// fails the test). It returns the exit error.
func (d *Daemon) Stop(sig os.Signal, within time.Duration) error {
	d.t.Helper()
	d.cmd.Process.Signal(sig)
	select {
	case <-d.done:
		return d.err
	case <-time.After(within):
		d.cmd.Process.Kill()
		<-d.done
		d.t.Errorf("daemon did not stop within %v after %v", within, sig)
		return d.err
	}
}

// Kill ends the daemon with SIGKILL and waits for it.
func (d *Daemon) Kill() {
	d.cmd.Process.Kill()
	<-d.done
}

// Ctl runs `sipedge ctl -config FILE args...`.
func (d *Daemon) Ctl(args ...string) (stdout, stderr string, code int) {
	return d.CtlIn("", args...)
}

// CtlIn is Ctl with stdin.
func (d *Daemon) CtlIn(stdin string, args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	cmd := exec.Command(d.Bin, append([]string{"ctl", "-config", d.Config}, args...)...)
	cmd.Stdin = bytes.NewBufferString(stdin)
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		d.t.Fatalf("ctl %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// CtlJSON runs `sipedge ctl -json args...`, fails the test unless it
// succeeds, and decodes the answer into v.
func (d *Daemon) CtlJSON(v any, args ...string) {
	d.t.Helper()
	out, errOut, code := d.Ctl(append([]string{"-json"}, args...)...)
	if code != 0 {
		d.t.Fatalf("ctl %v: exit %d: %s%s", args, code, errOut, out)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		d.t.Fatalf("ctl %v: %v\n%s", args, err, out)
	}
}

// WaitFor polls cond every 50 ms until it holds, or fails the test.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Buffer is a bytes.Buffer safe for a process's output copier and the
// test reading it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
