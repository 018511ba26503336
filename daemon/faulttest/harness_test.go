package faulttest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
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

var (
	portMu sync.Mutex
	used   = map[int]bool{}
)

// freePort returns a port free for UDP and TCP on 127.0.0.1.
func freePort(t testing.TB) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		portMu.Lock()
		dup := used[p]
		used[p] = true
		portMu.Unlock()
		if !dup {
			return p
		}
	}
	t.Fatal("no free port")
	return 0
}

// daemon is one `sipedge run` started by the test.
type daemon struct {
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

func startDaemon(t *testing.T, cfgYAML, dir string) *daemon {
	t.Helper()
	bin := testenv.SipedgeBinary(t)
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(cfgYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, bin: bin, cfg: cfg, out: &lockedBuffer{}, done: make(chan struct{})}
	d.cmd = exec.Command(bin, "run", "-config", cfg)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			t.Logf("daemon log (tail):\n%s", tail(d.out.String(), 60))
		}
	})
	for end := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := d.ctl("status"); err == nil {
			return d
		}
		select {
		case <-d.done:
			t.Fatalf("daemon exited at start:\n%s", d.out.String())
		default:
		}
		if time.Now().After(end) {
			t.Fatalf("daemon not answering ctl after 15 s:\n%s", d.out.String())
		}
	}
}

func tail(s string, n int) string {
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

func (d *daemon) stop() {
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

// ctl runs `sipedge ctl -json ARGS`.
func (d *daemon) ctl(args ...string) ([]byte, error) {
	var o, e bytes.Buffer
	cmd := exec.Command(d.bin, append([]string{"ctl", "-config", d.cfg, "-json", "-timeout", "10s"}, args...)...)
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("ctl %v: %v: %s %s", args, err, e.String(), o.String())
	}
	return o.Bytes(), nil
}

func (d *daemon) ctlJSON(v any, args ...string) {
	d.t.Helper()
	raw, err := d.ctl(args...)
	if err != nil {
		d.t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		d.t.Fatalf("ctl %v: %v: %s", args, err, raw)
	}
}

// rssKB is the daemon's resident set size now.
func (d *daemon) rssKB() int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
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

// sipp is one SIPp process started by the test.
type sipp struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	stf  string
	out  lockedBuffer
	done chan struct{}
}

// startSIPp runs sipp bound to ip with the harness's standard flags
// (explicit ports, no stdin, hard timeout, statistics every second).
func startSIPp(t testing.TB, name, ip string, timeout time.Duration, args ...string) *sipp {
	t.Helper()
	bin := testenv.MustHaveSIPp(t)
	dir := t.TempDir()
	p := &sipp{t: t, name: name, stf: filepath.Join(dir, "stats.csv"), done: make(chan struct{})}
	for i, a := range args {
		if a == "-sf" && i+1 < len(args) {
			args[i+1], _ = filepath.Abs(args[i+1])
		}
	}
	hasPort := false
	for _, a := range args {
		hasPort = hasPort || a == "-p"
	}
	if !hasPort {
		args = append(args, "-p", strconv.Itoa(freePort(t)))
	}
	std := []string{"-i", ip, "-cp", strconv.Itoa(freePort(t)), "-mp", strconv.Itoa(freePort(t)),
		"-nostdin", "-timeout", fmt.Sprintf("%ds", int(timeout.Seconds())), "-buff_size", "1048576",
		"-trace_stat", "-stf", p.stf, "-fd", "1"}
	p.cmd = exec.Command(bin, append(args, std...)...)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start sipp %s: %v", name, err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.stop)
	return p
}

// stop ends sipp with SIGUSR1 (final statistics written).
func (p *sipp) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGUSR1)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *sipp) wait(d time.Duration) {
	select {
	case <-p.done:
	case <-time.After(d):
		p.t.Errorf("sipp %s still running after %v; stopping it", p.name, d)
		p.stop()
	}
}

// stat reads a column of the last line of the -trace_stat CSV.
func (p *sipp) stat(name string) int {
	f, err := os.Open(p.stf)
	if err != nil {
		return 0
	}
	defer f.Close()
	var header, last string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if header == "" {
			header = sc.Text()
		} else if strings.TrimSpace(sc.Text()) != "" {
			last = sc.Text()
		}
	}
	h, v := strings.Split(header, ";"), strings.Split(last, ";")
	for i := range h {
		if h[i] == name && i < len(v) {
			n, _ := strconv.Atoi(v[i])
			return n
		}
	}
	return 0
}

// lab is two SIPp Cores on 127.0.0.1 and the config of a daemon in
// front of them.
type lab struct {
	port  int
	cores []int
}

func newLab(t *testing.T) *lab {
	l := &lab{port: freePort(t)}
	for i := 0; i < 2; i++ {
		p := freePort(t)
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
func (l *lab) caller(t *testing.T, count, cps, holdMS int) *sipp {
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
		d.ctlJSON(&st, "cores")
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
