package balancer

import (
	"bytes"
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

// binary is the real daemon (`sipedge run -config FILE`) as the balancer
// under test, driven and inspected with `sipedge ctl -json`.
type binary struct {
	t    *testing.T
	bin  string
	cfg  string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// configYAML renders the options the tests use as a sipedge config file.
func configYAML(opt Options, dataDir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "node: {name: bal-test, profile: single, data_dir: %q}\n", dataDir)
	b.WriteString("log: {level: debug, format: text}\nweb: {listen: \"\"}\n")
	if opt.MaxMessageBytes > 0 {
		fmt.Fprintf(&b, "security: {limits: {message_bytes: %d}}\n", opt.MaxMessageBytes)
	}
	b.WriteString("sip:\n  listen: [")
	for i, l := range opt.Listen {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", l)
	}
	fmt.Fprintf(&b, "]\n  algorithm: %s\n", opt.Algorithm)
	fmt.Fprintf(&b, "  probe: {interval: %s, timeout: %s, down_after: %d, up_after: %d}\n",
		opt.Probe.Interval, opt.Probe.Timeout, opt.Probe.DownAfter, opt.Probe.UpAfter)
	fmt.Fprintf(&b, "  retry: {attempt_timeout: %s, max_tries: %d}\n", opt.Retry.AttemptTimeout, opt.Retry.MaxTries)
	b.WriteString("  cores:\n")
	for _, c := range opt.Cores {
		fmt.Fprintf(&b, "    - {name: %s, address: %q, weight: %d, max_calls: %d}\n", c.Name, c.Address, c.Weight, c.MaxCalls)
	}
	return b.String()
}

func startBinary(t *testing.T, opt Options) *binary {
	t.Helper()
	return startBinaryIn(t, opt, t.TempDir())
}

// startBinaryIn runs the daemon with its config and data under dir (a
// second daemon in the same dir sees the first one's store).
func startBinaryIn(t *testing.T, opt Options, dir string) *binary {
	t.Helper()
	cfg := filepath.Join(dir, "sipedge.yaml")
	if err := os.WriteFile(cfg, []byte(configYAML(opt, filepath.Join(dir, "data"))), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &binary{t: t, bin: testenv.SipedgeBinary(t), cfg: cfg, out: &lockedBuffer{}, done: make(chan struct{})}
	d.cmd = exec.Command(d.bin, "run", "-config", cfg)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			out := d.out.String()
			if len(out) > 20000 {
				out = out[len(out)-20000:]
			}
			t.Logf("sipedge output (tail):\n%s", out)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := d.ctl("cores"); err == nil {
			return d
		}
		select {
		case <-d.done:
			t.Fatalf("sipedge exited at start:\n%s", d.out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("sipedge did not answer within 15s:\n%s", d.out.String())
		}
	}
}

// stop ends the daemon with SIGTERM (killing it if it lingers).
func (d *binary) stop() {
	select {
	case <-d.done:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(15 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
	}
}

// ctl runs `sipedge ctl -json ARGS` and returns its JSON answer.
func (d *binary) ctl(args ...string) ([]byte, error) {
	var o, e bytes.Buffer
	cmd := exec.Command(d.bin, append([]string{"ctl", "-config", d.cfg, "-json"}, args...)...)
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("ctl %v: %v: %s %s", args, err, e.String(), o.String())
	}
	return o.Bytes(), nil
}

type ctlCores struct {
	Dialogs int               `json:"dialogs"`
	Cores   []CoreStatus      `json:"cores"`
	Stats   map[string]uint64 `json:"stats"`
}

func (d *binary) status() ctlCores {
	raw, err := d.ctl("cores")
	if err != nil {
		d.t.Fatal(err)
	}
	var st ctlCores
	if err := json.Unmarshal(raw, &st); err != nil {
		d.t.Fatalf("ctl cores: %v: %s", err, raw)
	}
	return st
}

func (d *binary) cores() []CoreStatus       { return d.status().Cores }
func (d *binary) stats() map[string]uint64  { return d.status().Stats }
func (d *binary) dialogs() int              { return d.status().Dialogs }
func (d *binary) drain(name string) error   { _, err := d.ctl("cores", "drain", name); return err }
func (d *binary) disable(name string) error { _, err := d.ctl("cores", "disable", name); return err }

// hasEvent looks in the store's event log (`ctl events`), where the
// daemon records core-down as "core.down".
func (d *binary) hasEvent(kind, core string) bool {
	raw, err := d.ctl("events", "100")
	if err != nil {
		raw, err = d.ctl("events")
		if err != nil {
			d.t.Logf("ctl events: %v", err)
			return false
		}
	}
	var ev []struct {
		Kind    string `json:"kind"`
		Subject string `json:"subject"`
	}
	if err := json.Unmarshal(raw, &ev); err != nil {
		d.t.Logf("ctl events: %v: %s", err, raw)
		return false
	}
	want := strings.Replace(kind, "-", ".", 1)
	for _, e := range ev {
		if e.Kind == want && e.Subject == core {
			return true
		}
	}
	return false
}

// TestCoresRuntimeChangesPersist changes the pool with `sipedge ctl
// cores` and checks that a restarted daemon comes back with the changes.
func TestCoresRuntimeChangesPersist(t *testing.T) {
	dir := t.TempDir()
	port := testenv.FreePort(t)
	opt := Options{
		Listen:    []string{fmt.Sprintf("udp:127.0.0.1:%d", port)},
		Algorithm: LeastLoad,
		Probe:     ProbeOptions{Interval: time.Second, Timeout: 500 * time.Millisecond, DownAfter: 3, UpAfter: 2},
		Retry:     RetryOptions{AttemptTimeout: time.Second, MaxTries: 3},
		Cores: []CoreConfig{
			{Name: "core1", Address: "127.0.0.1:" + fmt.Sprint(testenv.FreePort(t)), Weight: 1},
			{Name: "core2", Address: "127.0.0.1:" + fmt.Sprint(testenv.FreePort(t)), Weight: 1},
		},
	}
	d := startBinaryIn(t, opt, dir)
	core3 := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	for _, args := range [][]string{
		{"cores", "add", "core3", core3, "2", "10"},
		{"cores", "drain", "core1"},
		{"cores", "remove", "core2"},
	} {
		if _, err := d.ctl(args...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.ctl("cores", "drain", "nosuch"); err == nil {
		t.Error("drain of an unknown core succeeded")
	}
	check := func(when string, cs []CoreStatus) {
		t.Helper()
		got := map[string]CoreStatus{}
		for _, c := range cs {
			got[c.Name] = c
		}
		if len(got) != 2 || got["core1"].State != StateDraining || got["core3"].Weight != 2 ||
			got["core3"].MaxCalls != 10 || got["core3"].Address != core3 {
			t.Fatalf("%s: cores %+v; want core1 draining and core3 (weight 2, max 10) only", when, cs)
		}
	}
	check("before restart", d.cores())
	d.stop()
	d2 := startBinaryIn(t, opt, dir)
	check("after restart", d2.cores())
	if _, err := d2.ctl("cores", "enable", "core1"); err != nil {
		t.Fatal(err)
	}
	for _, c := range d2.cores() {
		if c.Name == "core1" && c.State == StateDraining {
			t.Errorf("core1 still draining after enable")
		}
	}
}
