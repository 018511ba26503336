package balancer

import (
	"bufio"
	"bytes"
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
)

// The SIPp harness: every peer is started by the test, waited on and
// stopped by its PID.

// freeUDPPort returns a port free for UDP (and TCP) on 127.0.0.1.
func freeUDPPort(t testing.TB) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		portMu.Lock()
		dup := usedPorts[port]
		usedPorts[port] = true
		portMu.Unlock()
		if !dup {
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

var (
	portMu    sync.Mutex
	usedPorts = map[int]bool{}
)

type sippProc struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	dir  string
	stf  string
	out  bytes.Buffer
	done chan struct{}
	err  error
}

// startSIPp runs sipp with the harness's standard flags (explicit ports,
// no stdin, hard timeout, statistics every second) plus args.
func startSIPp(t testing.TB, name string, timeout time.Duration, args ...string) *sippProc {
	t.Helper()
	bin, err := exec.LookPath("sipp")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := &sippProc{t: t, name: name, dir: dir, stf: filepath.Join(dir, "stats.csv"), done: make(chan struct{})}
	std := []string{"-i", "127.0.0.1", "-cp", strconv.Itoa(freeUDPPort(t)), "-mp", strconv.Itoa(freeUDPPort(t)),
		"-nostdin", "-timeout", fmt.Sprintf("%ds", int(timeout.Seconds())), "-buff_size", "1048576",
		"-trace_stat", "-stf", p.stf, "-fd", "1", "-trace_counts", "-trace_err", "-error_file", filepath.Join(dir, "errors.log")}
	sf := ""
	for i, a := range args {
		if a == "-sf" && i+1 < len(args) {
			sf, _ = filepath.Abs(args[i+1])
			args[i+1] = sf
		}
	}
	p.cmd = exec.Command(bin, append(args, std...)...)
	p.cmd.Dir = dir
	p.cmd.Stdout = &p.out
	p.cmd.Stderr = &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start sipp %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop() })
	return p
}

// stop ends sipp with SIGUSR1 (it then writes its final statistics) and
// kills it if it lingers.
func (p *sippProc) stop() {
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

// kill ends sipp at once (a Core dying).
func (p *sippProc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// wait waits for sipp to exit on its own.
func (p *sippProc) wait(d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		p.t.Errorf("sipp %s still running after %v; stopping it", p.name, d)
		p.stop()
		return fmt.Errorf("timeout")
	}
}

func (p *sippProc) output() string { return p.out.String() }

// stats parses the last line of the -trace_stat CSV by column name.
func (p *sippProc) stats() map[string]string {
	f, err := os.Open(p.stf)
	if err != nil {
		p.t.Logf("sipp %s stats: %v", p.name, err)
		return nil
	}
	defer f.Close()
	var header, last string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if header == "" {
			header = sc.Text()
			continue
		}
		if strings.TrimSpace(sc.Text()) != "" {
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

func (p *sippProc) stat(name string) int {
	n, _ := strconv.Atoi(p.stats()[name])
	return n
}

// counts returns the message counts from -trace_counts: for each
// scenario line "<direction> <method or code>", the number of messages
// (first occurrence of a name wins).
func (p *sippProc) counts() map[string]int {
	files, _ := filepath.Glob(filepath.Join(p.dir, "*_counts.csv"))
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
	h, v := strings.Split(lines[0], ";"), strings.Split(lines[len(lines)-1], ";")
	m := map[string]int{}
	for i := range h {
		if i < len(v) {
			n, err := strconv.Atoi(strings.TrimSpace(v[i]))
			key := h[i]
			if j := strings.IndexByte(key, '_'); j > 0 {
				if _, err := strconv.Atoi(key[:j]); err == nil {
					key = key[j+1:]
				}
			}
			if err == nil {
				if _, seen := m[key]; !seen {
					m[key] = n
				}
			}
		}
	}
	return m
}
