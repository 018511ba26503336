package image

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// vm is a running QEMU booted on the qemu-x86_64 profile's hardware:
// four e1000 NICs (eth0..eth3, each alone on its own QEMU hub) and two
// UARTs: ttyS0, the operator's console menu, on a unix socket (menu);
// ttyS1, the kernel console with the PID 1 and daemon log and the debug
// hooks, on QEMU's stdin/stdout (lines). The HMP monitor and QMP are unix sockets;
// QMP events (WATCHDOG, RESET) are kept with QEMU's own timestamps.
type vm struct {
	t       *testing.T
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	dir     string
	mon     string
	started time.Time

	mu    sync.Mutex
	lines []logLine
	base  int // expect searches from here (set by phase)
	last  int // index of the last line expect matched
	more  chan struct{}
	done  chan struct{} // closed when QEMU has exited, with err set
	err   error

	qmpMu     sync.Mutex
	events    []qmpEvent
	menuTerm  *menu
	menuBytes func() string
}

type logLine struct {
	at   time.Time
	text string
}

type qmpEvent struct {
	Name string
	At   time.Time // QEMU's timestamp of the event
	Data json.RawMessage
}

// bootVM starts QEMU; extra arguments come after the machine's. With
// res nil it boots from a disk the extra arguments give.
func bootVM(t *testing.T, qemu string, res *Result, extra ...string) *vm {
	dir := t.TempDir()
	v := &vm{t: t, dir: dir, mon: filepath.Join(dir, "mon.sock"), more: make(chan struct{}, 1), done: make(chan struct{})}
	args := []string{"-machine", "q35", "-m", "512", "-nodefaults", "-no-user-config", "-display", "none"}
	if res != nil { // else the extra arguments give a disk to boot from
		args = append(args, "-kernel", res.Kernel, "-initrd", res.Initramfs,
			// The profile's own command line: console=ttyS1 makes the
			// second UART the log port.
			"-append", res.Cmdline+" sipedge.debug=1")
	}
	args = append(args, "-serial", "unix:"+filepath.Join(dir, "ttyS0.sock")+",server=on,wait=off", // ttyS0: menu
		"-serial", "stdio", // ttyS1: log and debug hooks
		"-monitor", "unix:"+v.mon+",server=on,wait=off",
		"-qmp", "unix:"+filepath.Join(dir, "qmp.sock")+",server=on,wait=off",
		"-device", "i6300esb", "-action", "watchdog=reset",
		"-netdev", "hubport,id=n0,hubid=0", "-device", "e1000,netdev=n0,id=nic0,mac=52:54:00:5e:00:01",
		"-netdev", "hubport,id=n1,hubid=1", "-device", "e1000,netdev=n1,id=nic1,mac=52:54:00:5e:00:02",
		// eth2 and eth3: bond1, 802.3ad, with no LACP partner (each alone
		// on its hub, as eth0 and eth1 are).
		"-netdev", "hubport,id=n2,hubid=2", "-device", "e1000,netdev=n2,id=nic2,mac=52:54:00:5e:00:03",
		"-netdev", "hubport,id=n3,hubid=3", "-device", "e1000,netdev=n3,id=nic3,mac=52:54:00:5e:00:04")
	v.cmd = exec.Command(qemu, append(args, extra...)...)
	var err error
	if v.stdin, err = v.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := v.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	v.cmd.Stderr = v.cmd.Stdout
	v.started = time.Now()
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			v.mu.Lock()
			v.lines = append(v.lines, logLine{time.Now(), strings.TrimRight(sc.Text(), "\r")})
			v.mu.Unlock()
			select {
			case v.more <- struct{}{}:
			default:
			}
		}
		v.err = v.cmd.Wait()
		close(v.done)
		close(v.more)
	}()
	t.Cleanup(func() {
		v.cmd.Process.Kill()
		<-v.done
		if t.Failed() {
			v.mu.Lock()
			var b strings.Builder
			for _, l := range v.lines {
				fmt.Fprintf(&b, "%8.3fs %s\n", l.at.Sub(v.started).Seconds(), l.text)
			}
			v.mu.Unlock()
			t.Logf("ttyS1 (log):\n%s", b.String())
			if v.menuBytes != nil {
				t.Logf("ttyS0 (menu):\n%s", v.menuBytes())
			}
		}
	})
	v.connectQMP(filepath.Join(dir, "qmp.sock"))
	return v
}

// dialRetry connects to one of QEMU's unix sockets, which appear a moment
// after QEMU starts.
func (v *vm) dialRetry(path string) net.Conn {
	v.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.Dial("unix", path)
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			v.t.Fatalf("connect to %s: %v", path, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// connectQMP negotiates QMP and records every event.
func (v *vm) connectQMP(path string) {
	c := v.dialRetry(path)
	v.t.Cleanup(func() { c.Close() })
	r := bufio.NewReader(c)
	if _, err := r.ReadBytes('\n'); err != nil { // greeting
		v.t.Fatalf("qmp greeting: %v", err)
	}
	fmt.Fprintf(c, `{"execute":"qmp_capabilities"}`+"\n")
	go func() {
		for {
			b, err := r.ReadBytes('\n')
			if err != nil {
				return
			}
			var m struct {
				Event     string `json:"event"`
				Timestamp struct {
					Seconds      int64 `json:"seconds"`
					Microseconds int64 `json:"microseconds"`
				} `json:"timestamp"`
				Data json.RawMessage `json:"data"`
			}
			if json.Unmarshal(b, &m) != nil || m.Event == "" {
				continue
			}
			v.qmpMu.Lock()
			v.events = append(v.events, qmpEvent{m.Event, time.Unix(m.Timestamp.Seconds, m.Timestamp.Microseconds*1000), m.Data})
			v.qmpMu.Unlock()
		}
	}()
}

// qmpEvent waits for the first event called name at or after since.
func (v *vm) qmpEvent(name string, since time.Time, timeout time.Duration) qmpEvent {
	v.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v.qmpMu.Lock()
		for _, e := range v.events {
			if e.Name == name && !e.At.Before(since) {
				v.qmpMu.Unlock()
				return e
			}
		}
		v.qmpMu.Unlock()
		if time.Now().After(deadline) {
			v.t.Fatalf("no QMP %s event within %v", name, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// phase makes later expects search only after the last matched line
// (lines of one phase may come in any order).
func (v *vm) phase() {
	v.mu.Lock()
	v.base = v.last + 1
	v.mu.Unlock()
}

// expect waits for a log line matching re since the current phase began,
// and returns its submatches.
func (v *vm) expect(re string, timeout time.Duration) []string {
	v.t.Helper()
	m, _ := v.expectAt(re, timeout)
	return m
}

// expectAt is expect that also returns when the line arrived.
func (v *vm) expectAt(re string, timeout time.Duration) ([]string, time.Time) {
	v.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.After(timeout)
	for {
		v.mu.Lock()
		for i := v.base; i < len(v.lines); i++ {
			if m := rx.FindStringSubmatch(v.lines[i].text); m != nil {
				v.last = i
				at := v.lines[i].at
				v.mu.Unlock()
				return m, at
			}
		}
		v.mu.Unlock()
		select {
		case _, ok := <-v.more:
			if !ok {
				v.t.Fatalf("QEMU exited while waiting for %q", re)
			}
		case <-deadline:
			v.t.Fatalf("no log line matching %q within %v", re, timeout)
		}
	}
}

// debug sends a line to the debug hooks on the log port.
func (v *vm) debug(line string) {
	v.t.Helper()
	if _, err := io.WriteString(v.stdin, line+"\n"); err != nil {
		v.t.Fatal(err)
	}
}

func (v *vm) monitor(cmd string) {
	v.t.Helper()
	c, err := net.Dial("unix", v.mon)
	if err != nil {
		v.t.Fatalf("monitor: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "%s\n", cmd)
	buf := make([]byte, 4096)
	var got string
	for !strings.Contains(got, cmd) { // HMP echoes the command once done
		n, err := c.Read(buf)
		if err != nil {
			v.t.Fatalf("monitor %q: %v (got %q)", cmd, err, got)
		}
		got += string(buf[:n])
	}
}

// menu is the operator's end of the VM's first UART: what a terminal
// plugged into the console port would see and type.
type menu struct {
	t    *testing.T
	c    net.Conn
	mu   sync.Mutex
	buf  bytes.Buffer
	seen int
}

// openMenu connects to ttyS0. The menu printed before we connected is
// lost (as on a real port with no terminal); Enter redraws the banner.
func (v *vm) openMenu() *menu {
	v.t.Helper()
	m := &menu{t: v.t, c: v.dialRetry(filepath.Join(v.dir, "ttyS0.sock"))}
	v.t.Cleanup(func() { m.c.Close() })
	v.menuTerm = m
	v.menuBytes = func() string { m.mu.Lock(); defer m.mu.Unlock(); return m.buf.String() }
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := m.c.Read(b)
			m.mu.Lock()
			m.buf.Write(b[:n])
			m.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return m
}

// expect waits for re in the menu output after what was already
// matched, and returns that output up to the end of the match.
func (m *menu) expect(re string, timeout time.Duration) string {
	m.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	for {
		m.mu.Lock()
		out := m.buf.String()[m.seen:]
		loc := rx.FindStringIndex(out)
		if loc != nil {
			m.seen += loc[1]
		}
		m.mu.Unlock()
		if loc != nil {
			return out[:loc[1]]
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("menu: no %q within %v; output since the last match:\n%s", re, timeout, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// key types s with no Enter.
func (m *menu) key(s string) {
	m.t.Helper()
	if _, err := m.c.Write([]byte(s)); err != nil {
		m.t.Fatalf("menu: write: %v", err)
	}
}

// skip forgets the output so far.
func (m *menu) skip() {
	m.mu.Lock()
	m.seen = m.buf.Len()
	m.mu.Unlock()
}

// line types s and Enter (a terminal sends CR), slowly enough for a
// 16550 without flow control.
func (m *menu) line(s string) {
	m.t.Helper()
	for _, b := range []byte(s + "\r") {
		if _, err := m.c.Write([]byte{b}); err != nil {
			m.t.Fatalf("menu: write: %v", err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// paged reads a paged screen to its end ("Press Enter to continue."),
// pressing Enter at each "-- more" stop, and returns the whole text.
func (m *menu) paged(timeout time.Duration) string {
	m.t.Helper()
	var all strings.Builder
	for {
		out := m.expect(`-- more: Enter, or q to stop -- |Press Enter to continue\. `, timeout)
		all.WriteString(out)
		m.line("")
		if strings.HasSuffix(out, "continue. ") {
			return all.String()
		}
	}
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

// plain drops terminal escapes and CRs from menu output.
func plain(s string) string { return strings.ReplaceAll(ansi.ReplaceAllString(s, ""), "\r", "") }
