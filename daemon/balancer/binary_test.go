package balancer

import (
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/internal/daemontest"
	"github.com/sipedge/sipedge/hal/testenv"
)

// binary is the real daemon (`sipedge run -config FILE`) as the balancer
// under test, driven and inspected with `sipedge ctl -json`.
type binary struct {
	*daemontest.Daemon
	t *testing.T
}

// configYAML renders the options the tests use as a sipedge config file.
func configYAML(opt Options, dataDir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "node: {name: bal-test, profile: single, data_dir: %q}\n", dataDir)
	b.WriteString("log: {level: debug, format: text}\nweb: {listen: \"\"}\n")
	if opt.MaxMessageBytes > 0 {
		fmt.Fprintf(&b, "security: {limits: {message_bytes: %d}}\n", opt.MaxMessageBytes)
	}
	if opt.DNS != nil {
		b.WriteString("network: {dns: [")
		for i, a := range opt.DNS.Servers() {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q", a.String())
		}
		b.WriteString("]}\n")
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
	if opt.FullPath {
		b.WriteString("  raw_paths: false\n")
	}
	if opt.CorePort != 0 {
		fmt.Fprintf(&b, "  core_port: %d\n", opt.CorePort)
	}
	b.WriteString("  cores:\n")
	for _, c := range opt.Cores {
		fmt.Fprintf(&b, "    - {name: %s, address: %q, weight: %d, max_calls: %d}\n", c.Name, c.Address, max(c.Weight, 1), c.MaxCalls)
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
	testOptions(t, &opt)
	d := daemontest.New(t, dir)
	d.WriteConfig(configYAML(opt, d.DataDir()))
	return &binary{Daemon: d.Start(), t: t}
}

// stop ends the daemon with SIGTERM (killing it if it lingers).
func (d *binary) stop() { d.Stop(syscall.SIGTERM, 15*time.Second) }

// ctl runs `sipedge ctl -json ARGS` and returns its JSON answer.
func (d *binary) ctl(args ...string) ([]byte, error) {
	out, errOut, code := d.Ctl(append([]string{"-json"}, args...)...)
	if code != 0 {
		return nil, fmt.Errorf("ctl %v: exit %d: %s %s", args, code, errOut, out)
	}
	return []byte(out), nil
}

type ctlCores struct {
	CoreSide []string          `json:"core_side"`
	Dialogs  int               `json:"dialogs"`
	Cores    []CoreStatus      `json:"cores"`
	Stats    map[string]uint64 `json:"stats"`
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
func (d *binary) coreSide() []string        { return d.status().CoreSide }
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
