// Package sipptest runs SIPp (Debian package sip-tester) as a real peer
// in tests: Cores and callers. Every process is started by the test with
// the harness's standard flags (explicit ports, no stdin, a hard
// timeout, statistics every second, message counts), waited on, and
// stopped by its PID with SIGUSR1 so that SIPp writes its final
// statistics. See ../shared/LAB-NOTES.md for SIPp's pitfalls.
package sipptest

import (
	"bufio"
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
	"github.com/sipedge/sipedge/hal/testenv"
)

// Options place a SIPp process.
type Options struct {
	Name    string        // for messages
	IP      string        // local address (-i); default 127.0.0.1
	Netns   string        // run inside this network namespace (ip netns exec)
	Timeout time.Duration // hard stop (-timeout); default 60s
	// Dir holds its statistics and logs; default a new t.TempDir().
	Dir string
}

// Proc is one SIPp process.
type Proc struct {
	t    testing.TB
	Name string
	Dir  string
	cmd  *exec.Cmd
	stf  string
	out  daemontest.Buffer
	done chan struct{}
	err  error
}

// Start runs sipp with args (e.g. "-sf", scenario, target, "-r", "50")
// plus the standard flags. A "-p" not in args gets a free port; "-sf"
// paths are made absolute (SIPp runs in its own directory).
func Start(t testing.TB, o Options, args ...string) *Proc {
	t.Helper()
	bin := testenv.MustHaveSIPp(t)
	if o.IP == "" {
		o.IP = "127.0.0.1"
	}
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	if o.Dir == "" {
		o.Dir = t.TempDir()
	} else if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := &Proc{t: t, Name: o.Name, Dir: o.Dir, stf: filepath.Join(o.Dir, "stats.csv"), done: make(chan struct{})}
	args = append([]string(nil), args...)
	port, tcp := 0, false
	for i, a := range args {
		if i+1 >= len(args) {
			break
		}
		switch a {
		case "-sf":
			args[i+1], _ = filepath.Abs(args[i+1])
		case "-p":
			port, _ = strconv.Atoi(args[i+1])
		case "-t":
			tcp = strings.HasPrefix(args[i+1], "t")
		}
	}
	if port == 0 {
		port = testenv.FreePort(t)
		args = append(args, "-p", strconv.Itoa(port))
	}
	std := []string{"-i", o.IP, "-cp", strconv.Itoa(testenv.FreePort(t)), "-mp", strconv.Itoa(testenv.FreePorts(t, 4)),
		"-nostdin", "-timeout", fmt.Sprintf("%ds", int(o.Timeout.Seconds())), "-buff_size", "1048576",
		"-trace_stat", "-stf", p.stf, "-fd", "1", "-trace_counts",
		"-trace_err", "-error_file", filepath.Join(o.Dir, "errors.log")}
	argv := append([]string{bin}, append(args, std...)...)
	if o.Netns != "" {
		argv = append([]string{"ip", "netns", "exec", o.Netns}, argv...)
	}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Dir = o.Dir
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start sipp %s: %v", o.Name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.Stop)
	p.waitBound(port, tcp, 10*time.Second)
	return p
}

// waitBound waits until sipp's own port is open in its network namespace
// (read from /proc/PID/net), so that a peer's first message is not lost
// to a process still loading its scenario. It returns early if sipp
// exits; past d it fails the test.
func (p *Proc) waitBound(port int, tcp bool, d time.Duration) {
	p.t.Helper()
	files := []string{"udp", "udp6"}
	if tcp {
		files = []string{"tcp", "tcp6"}
	}
	deadline := time.Now().Add(d)
	for {
		for _, f := range files {
			if portOpen(fmt.Sprintf("/proc/%d/net/%s", p.PID(), f), port, tcp) {
				return
			}
		}
		select {
		case <-p.done:
			return
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Stop()
			p.t.Fatalf("sipp %s: port %d not open within %v; output:\n%s", p.Name, port, d, p.Output())
		}
	}
}

// portOpen reports whether a /proc/net/{udp,tcp}[6] table has a socket
// bound to port (for TCP, listening).
func portOpen(table string, port int, listen bool) bool {
	data, err := os.ReadFile(table)
	if err != nil {
		return false
	}
	want := fmt.Sprintf(":%04X", port)
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasSuffix(f[1], want) {
			continue
		}
		if !listen || f[3] == "0A" {
			return true
		}
	}
	return false
}

// PID is the process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Done is closed when sipp exits.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Stop ends sipp with SIGUSR1 (it then writes its final statistics) and
// kills it if it lingers.
func (p *Proc) Stop() {
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

// Kill ends sipp at once (a Core dying).
func (p *Proc) Kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// Wait waits up to d for sipp to exit on its own; past d it reports an
// error on the test, stops sipp and returns an error.
func (p *Proc) Wait(d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		p.t.Errorf("sipp %s still running after %v; stopping it", p.Name, d)
		p.Stop()
		return fmt.Errorf("sipp %s: timeout", p.Name)
	}
}

// Output is what sipp printed.
func (p *Proc) Output() string { return p.out.String() }

// Stats parses the last line of the -trace_stat CSV by column name.
func (p *Proc) Stats() map[string]string {
	f, err := os.Open(p.stf)
	if err != nil {
		return nil
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
	m := map[string]string{}
	h, v := strings.Split(header, ";"), strings.Split(last, ";")
	for i := range h {
		if i < len(v) {
			m[h[i]] = v[i]
		}
	}
	return m
}

// Stat is one statistics column as a number, e.g. "SuccessfulCall(C)".
func (p *Proc) Stat(name string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(p.Stats()[name]))
	return n
}

// Counts returns the message counts from -trace_counts: for each
// scenario message "<method or code>_<direction>" (e.g. "BYE_Recv"),
// the number of messages (the first occurrence of a name wins).
func (p *Proc) Counts() map[string]int {
	m := map[string]int{}
	for _, c := range p.StepCounts() {
		key := c.Name
		if j := strings.IndexByte(key, '_'); j > 0 {
			if _, err := strconv.Atoi(key[:j]); err == nil {
				key = key[j+1:]
			}
		}
		if _, seen := m[key]; !seen {
			m[key] = c.N
		}
	}
	return m
}

// StepCount is one column of -trace_counts: "<index>_<message>_<what>"
// (e.g. "7_200_Timeout": the scenario's 8th message, a 200 that did not
// come) and its count.
type StepCount struct {
	Name string
	N    int
}

// StepCounts returns every numeric column of the last -trace_counts
// line, in the scenario's order.
func (p *Proc) StepCounts() []StepCount {
	files, _ := filepath.Glob(filepath.Join(p.Dir, "*_counts.csv"))
	if len(files) == 0 {
		return nil
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		return nil
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) < 2 {
		return nil
	}
	var out []StepCount
	h, v := strings.Split(lines[0], ";"), strings.Split(lines[len(lines)-1], ";")
	for i := range h {
		if i >= len(v) {
			break
		}
		if n, err := strconv.Atoi(strings.TrimSpace(v[i])); err == nil {
			out = append(out, StepCount{Name: h[i], N: n})
		}
	}
	return out
}
