package tlspeers

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/internal/daemontest"
	"github.com/sipedge/sipedge/daemon/internal/sipptest"
	"github.com/sipedge/sipedge/hal/testenv"
)

// The SIPp scenarios of the balancer's own behaviour tests.
const (
	coreScenario   = "../testdata/core_uas.xml"   // a Core: OPTIONS 200; INVITE 100/180/200, ACK, BYE 200
	callerScenario = "../testdata/caller_uac.xml" // a caller honouring Record-Route
)

// edgeConfig is what a test sets of sipedge's configuration; the rest
// (probe timers, logging, no web page) is fixed by yaml.
type edgeConfig struct {
	UDP, TLS   int    // udp: and tls: listeners on 127.0.0.1
	CorePort   int    // sip.core_port (a free port of the test's own)
	Cert, Key  string // the tls: listener's certificate
	ClientCA   string // sip.tls.client_ca
	Verify     string // sip.tls.verify_clients
	CoreCA     string // sip.tls.core_ca
	Cores      []coreConfig
	Trusted    []string // security.trusted
	ProbeEvery time.Duration
}

type coreConfig struct{ Name, Address, TLSName string }

// yaml renders the configuration file (keys as in the README's
// configuration reference).
func (c edgeConfig) yaml(dataDir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "node: {name: tlspeers, profile: single, data_dir: %q}\n", dataDir)
	b.WriteString("log: {level: debug, format: text}\nweb: {listen: \"\"}\n")
	b.WriteString("sip:\n")
	fmt.Fprintf(&b, "  listen: [\"udp:127.0.0.1:%d\", \"tls:127.0.0.1:%d\"]\n", c.UDP, c.TLS)
	fmt.Fprintf(&b, "  core_port: %d\n", c.CorePort)
	b.WriteString("  tls:\n")
	fmt.Fprintf(&b, "    certificates: [{cert: %q, key: %q}]\n", c.Cert, c.Key)
	if c.ClientCA != "" {
		fmt.Fprintf(&b, "    client_ca: %q\n", c.ClientCA)
	}
	if c.Verify != "" {
		fmt.Fprintf(&b, "    verify_clients: %s\n", c.Verify)
	}
	if c.CoreCA != "" {
		fmt.Fprintf(&b, "    core_ca: %q\n", c.CoreCA)
	}
	every := c.ProbeEvery
	if every == 0 {
		every = time.Second
	}
	b.WriteString("  algorithm: round-robin\n")
	fmt.Fprintf(&b, "  probe: {interval: %s, timeout: %s, down_after: 2, up_after: 1}\n", every, every)
	b.WriteString("  retry: {attempt_timeout: 2s, max_tries: 2}\n")
	b.WriteString("  cores:\n")
	for _, co := range c.Cores {
		fmt.Fprintf(&b, "    - {name: %s, address: %q", co.Name, co.Address)
		if co.TLSName != "" {
			fmt.Fprintf(&b, ", tls_name: %s", co.TLSName)
		}
		b.WriteString("}\n")
	}
	if len(c.Trusted) > 0 {
		b.WriteString("security:\n  trusted: [")
		for i, s := range c.Trusted {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q", s)
		}
		b.WriteString("]\n")
	}
	return b.String()
}

// edge is the real sipedge daemon under test.
type edge struct {
	*daemontest.Daemon
	t   *testing.T
	cfg edgeConfig
}

// startEdge fills in the listen ports when they are 0, writes the
// configuration and starts the daemon.
func startEdge(t *testing.T, c edgeConfig) *edge {
	t.Helper()
	for _, p := range []*int{&c.UDP, &c.TLS, &c.CorePort} {
		if *p == 0 {
			*p = testenv.FreePort(t)
		}
	}
	d := daemontest.New(t)
	d.WriteConfig(c.yaml(d.DataDir()))
	return &edge{Daemon: d.Start(), t: t, cfg: c}
}

// tlsAddr is the tls: listener's address.
func (e *edge) tlsAddr() string { return fmt.Sprintf("127.0.0.1:%d", e.cfg.TLS) }

// coresStatus is what `sipedge ctl -json cores` answers (the fields the
// tests read).
type coresStatus struct {
	Cores []coreStatus      `json:"cores"`
	Stats map[string]uint64 `json:"stats"`
}

type coreStatus struct {
	Name     string `json:"name"`
	Address  string `json:"address"`
	State    string `json:"state"`
	Routed   uint64 `json:"routed"`
	Answered uint64 `json:"answered"`
	LastCode int    `json:"last_code"`
}

func (e *edge) status() coresStatus {
	e.t.Helper()
	var st coresStatus
	e.CtlJSON(&st, "cores")
	return st
}

func (e *edge) core(name string) coreStatus {
	e.t.Helper()
	st := e.status()
	for _, c := range st.Cores {
		if c.Name == name {
			return c
		}
	}
	e.t.Fatalf("no Core %s in ctl cores: %+v", name, st.Cores)
	return coreStatus{}
}

// waitCore waits until Core name satisfies ok.
func (e *edge) waitCore(name, what string, within time.Duration, ok func(coreStatus) bool) coreStatus {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		c := e.core(name)
		if ok(c) {
			return c
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("Core %s not %s within %v: %+v (stats %v)", name, what, within, c, tlsStats(e.status().Stats))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// probed: active, and its last probe answered 200.
func probed(c coreStatus) bool { return c.State == "active" && c.LastCode == 200 }

// tlsStats picks the TLS and TCP counters out of ctl cores' stats, for
// messages.
func tlsStats(m map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range m {
		if strings.HasPrefix(k, "tls_") || strings.HasPrefix(k, "tcp_closed") {
			out[k] = v
		}
	}
	return out
}

// startCore runs a SIPp Core (core_uas.xml) on UDP 127.0.0.1:port.
func startCore(t *testing.T, name string, port int) *sipptest.Proc {
	t.Helper()
	return sipptest.Start(t, sipptest.Options{Name: name, Timeout: 90 * time.Second},
		"-sf", coreScenario, "-p", strconv.Itoa(port))
}

// peer is a program the test starts (baresip, Kamailio) in its own
// process group, waited on, and stopped by its PID; a group leader's
// children (Kamailio's workers) are killed with it if it has to be
// killed.
type peer struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	out  daemontest.Buffer
	done chan struct{}
	err  error
}

// startPeer runs argv in dir. Its output is kept (Output) and shown when
// the test fails; it is stopped when the test ends.
func startPeer(t testing.TB, name, dir string, argv ...string) *peer {
	t.Helper()
	p := &peer{t: t, name: name, done: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(10 * time.Second)
		if t.Failed() {
			out := p.Output()
			if len(out) > 30000 {
				out = "...\n" + out[len(out)-30000:]
			}
			t.Logf("%s output (tail):\n%s", name, out)
		}
	})
	return p
}

// Output is what the peer printed so far.
func (p *peer) Output() string { return p.out.String() }

// exited reports whether the peer has exited.
func (p *peer) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits up to d for the peer to exit on its own; it reports
// whether it did.
func (p *peer) wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// stop sends SIGTERM and, if the peer is still there after within,
// SIGKILL to its process group (the group of the process the test
// started, by its id).
func (p *peer) stop(within time.Duration) {
	if p.exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if p.wait(within) {
		return
	}
	p.t.Logf("%s (pid %d) did not stop within %v of SIGTERM: killing its process group", p.name, p.cmd.Process.Pid, within)
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// listening reports whether a TCP socket listens on port (any local
// address) in this network namespace, from /proc/net/tcp{,6}.
func listening(port int) bool {
	want := fmt.Sprintf(":%04X", port)
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) >= 4 && strings.HasSuffix(fs[1], want) && fs[3] == "0A" {
				return true
			}
		}
	}
	return false
}

// firstExisting returns the first of paths that exists, or "".
func firstExisting(paths ...string) string {
	for _, p := range paths {
		if matches, _ := filepath.Glob(p); len(matches) > 0 {
			return matches[0]
		}
	}
	return ""
}

// writeFile writes a file into dir and returns its path.
func writeFile(t testing.TB, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
