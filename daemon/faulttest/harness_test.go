package faulttest

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/internal/daemontest"
	"github.com/sipedge/sipedge/daemon/internal/sipptest"
	"github.com/sipedge/sipedge/hal/testenv"
)

// daemon is one `sipedge run` started by the test.
type daemon struct {
	*daemontest.Daemon
	t *testing.T
}

// startDaemon runs the daemon on cfgYAML, its files under dir.
func startDaemon(t *testing.T, cfgYAML, dir string) *daemon {
	t.Helper()
	d := daemontest.New(t, dir)
	d.WriteConfig(cfgYAML)
	return &daemon{Daemon: d.Start(), t: t}
}

// stop ends the daemon with SIGTERM.
func (d *daemon) stop() { d.Stop(syscall.SIGTERM, 15*time.Second) }

// ctl runs `sipedge ctl -json ARGS`.
func (d *daemon) ctl(args ...string) ([]byte, error) {
	out, errOut, code := d.Ctl(append([]string{"-json", "-timeout", "10s"}, args...)...)
	if code != 0 {
		return nil, fmt.Errorf("ctl %v: exit %d: %s %s", args, code, errOut, out)
	}
	return []byte(out), nil
}

// startSIPp runs sipp bound to ip with the harness's standard flags.
func startSIPp(t testing.TB, name, ip string, timeout time.Duration, args ...string) *sipptest.Proc {
	t.Helper()
	return sipptest.Start(t, sipptest.Options{Name: name, IP: ip, Timeout: timeout}, args...)
}

// lab is two SIPp Cores on 127.0.0.1 and the config of a daemon in
// front of them.
type lab struct {
	port  int
	cores []int
}

func newLab(t *testing.T) *lab {
	l := &lab{port: testenv.FreePort(t)}
	for i := 0; i < 2; i++ {
		p := testenv.FreePort(t)
		l.cores = append(l.cores, p)
		startSIPp(t, fmt.Sprintf("core%d", i+1), "127.0.0.1", 180*time.Second, "-sf", "testdata/core_uas.xml", "-p", strconv.Itoa(p))
	}
	return l
}

// config renders a daemon config; security is the YAML of the
// security: section's body (indented by two spaces).
func (l *lab) config(dataDir string, maxCalls int, security string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "node: {name: fault, profile: single, data_dir: %q}\n", dataDir)
	b.WriteString("log: {level: info, format: text}\nweb: {listen: \"\"}\n")
	fmt.Fprintf(&b, "sip:\n  listen: [\"udp:127.0.0.1:%d\"]\n  algorithm: least-load\n", l.port)
	b.WriteString("  probe: {interval: 500ms, timeout: 400ms, down_after: 3, up_after: 1}\n  retry: {attempt_timeout: 1s, max_tries: 2}\n  cores:\n")
	for i, p := range l.cores {
		fmt.Fprintf(&b, "    - {name: core%d, address: \"127.0.0.1:%d\", max_calls: %d}\n", i+1, p, maxCalls)
	}
	b.WriteString("security:\n" + security)
	return b.String()
}

// caller places calls count at cps, each held holdMS, from 127.0.0.1.
func (l *lab) caller(t *testing.T, count, cps, holdMS int) *sipptest.Proc {
	return startSIPp(t, "caller", "127.0.0.1", 120*time.Second, fmt.Sprintf("127.0.0.1:%d", l.port), "-sf", "testdata/caller_uac.xml",
		"-m", strconv.Itoa(count), "-r", strconv.Itoa(cps), "-d", strconv.Itoa(holdMS), "-recv_timeout", "5000", "-s", "1000")
}

// waitCoresUp waits until every Core is active.
func waitCoresUp(t *testing.T, d *daemon, n int) {
	t.Helper()
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		var st struct {
			Cores []struct {
				State   string  `json:"state"`
				Latency float64 `json:"latency_ms"`
			} `json:"cores"`
		}
		d.CtlJSON(&st, "cores")
		up := 0
		for _, c := range st.Cores {
			if c.State == "active" && c.Latency > 0 {
				up++
			}
		}
		if up == n {
			return
		}
	}
	t.Fatal("Cores not active within 15 s")
}

type bansAnswer struct {
	Bans []struct {
		Source  string `json:"source"`
		Dropped uint64 `json:"dropped"`
	} `json:"bans"`
	Counts    map[string]uint64 `json:"counts"`
	SaveError string            `json:"save_error"`
}
