package image

import (
	"bufio"
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

	"github.com/sipedge/sipedge/hal/testenv"
)

// vm is a running QEMU with its serial console on stdin/stdout and its
// HMP monitor on a unix socket.
type vm struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	mon   string
	mu    sync.Mutex
	lines []string
	base  int // expect searches from here (set by phase)
	last  int // index of the last line expect matched
	more  chan struct{}
	done  chan struct{} // closed when QEMU has exited, with err set
	err   error
}

func bootVM(t *testing.T, qemu string, res *Result) *vm {
	dir := t.TempDir()
	v := &vm{t: t, mon: filepath.Join(dir, "mon.sock"), more: make(chan struct{}, 1), done: make(chan struct{})}
	v.cmd = exec.Command(qemu, "-machine", "q35", "-m", "512", "-nodefaults", "-no-user-config", "-display", "none",
		"-kernel", res.Kernel, "-initrd", res.Initramfs,
		"-append", "console=ttyS0,115200 panic=5 quiet sipedge.debug=1",
		"-serial", "stdio", "-monitor", "unix:"+v.mon+",server=on,wait=off",
		"-device", "i6300esb", "-action", "watchdog=reset",
		"-netdev", "hubport,id=n0,hubid=0", "-device", "e1000,netdev=n0,id=nic0,mac=52:54:00:5e:00:01",
		"-netdev", "hubport,id=n1,hubid=1", "-device", "e1000,netdev=n1,id=nic1,mac=52:54:00:5e:00:02")
	var err error
	if v.stdin, err = v.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := v.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	v.cmd.Stderr = v.cmd.Stdout
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			v.mu.Lock()
			v.lines = append(v.lines, strings.TrimRight(sc.Text(), "\r"))
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
			t.Logf("console:\n%s", strings.Join(v.lines, "\n"))
			v.mu.Unlock()
		}
	})
	return v
}

// phase makes later expects search only after the last matched line
// (lines of one phase may come in any order).
func (v *vm) phase() {
	v.mu.Lock()
	v.base = v.last + 1
	v.mu.Unlock()
}

// expect waits for a console line matching re since the current phase
// began, and returns its submatches.
func (v *vm) expect(re string, timeout time.Duration) []string {
	v.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.After(timeout)
	for {
		v.mu.Lock()
		for i := v.base; i < len(v.lines); i++ {
			if m := rx.FindStringSubmatch(v.lines[i]); m != nil {
				v.last = i
				v.mu.Unlock()
				return m
			}
		}
		v.mu.Unlock()
		select {
		case _, ok := <-v.more:
			if !ok {
				v.t.Fatalf("QEMU exited while waiting for %q", re)
			}
		case <-deadline:
			v.t.Fatalf("no console line matching %q within %v", re, timeout)
		}
	}
}

func (v *vm) console(line string) {
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

// TestApplianceInQEMU boots the real image: PID 1 loads the modules and
// supervises the daemon, the daemon bonds both NICs and arms the
// i6300esb watchdog; taking the active NIC's link down moves the bond to
// the other; freezing the daemon gets the VM reset by the watchdog, and
// the next boot says so.
func TestApplianceInQEMU(t *testing.T) {
	qemu := testenv.MustHaveQEMU(t)
	testenv.Short(t, "boots a VM twice (about a minute under TCG)")
	cache := needKernel(t)
	res, err := Build(Options{Binary: testenv.SipedgeBinary(t), Profile: "qemu-x86_64", CacheDir: cache,
		RootFS: filepath.Join(repoRoot(t), "rootfs"), OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	v := bootVM(t, qemu, res)

	// Boot 1 (cold): modules, daemon, bond with both slaves up.
	v.expect(`initd: modules" .*loaded=watchdog,i6300esb,softdog,tls,bonding,e1000`, 90*time.Second)
	initAt := time.Since(start)
	v.expect(`initd: daemon started`, 20*time.Second)
	v.expect(`watchdog armed" timeout=10s last_reset_by_watchdog=false`, 20*time.Second)
	v.expect(`bond status" bond=bond0 summary="mode=active-backup up=true active=eth0 slaves=eth0:up,eth1:up"`, 30*time.Second)
	ready := time.Since(start)
	t.Logf("QEMU start -> PID 1 modules loaded: %v; -> bond0 up with both slaves (ready): %v", initAt.Round(time.Millisecond), ready.Round(time.Millisecond))

	// Failover: the active NIC loses its link.
	v.phase()
	t0 := time.Now()
	v.monitor("set_link nic0 off")
	v.expect(`bond0: slave eth0 link up -> down`, 10*time.Second)
	v.expect(`bond0: active slave eth0 -> eth1`, 10*time.Second)
	v.expect(`summary="mode=active-backup up=true active=eth1 slaves=eth0:down,eth1:up"`, 10*time.Second)
	t.Logf("set_link off -> daemon reports the new active slave: %v", time.Since(t0).Round(time.Millisecond))

	// A hung daemon: nothing feeds the watchdog, the VM resets.
	v.phase()
	v.console("sipedge-pid")
	v.expect(`CONSOLE daemon pid=\d+ starts=1`, 10*time.Second)
	v.phase()
	v.console("sipedge-freeze")
	v.expect(`CONSOLE SIGSTOP pid=\d+ err=<nil>`, 10*time.Second)
	t0 = time.Now()
	v.expect(`initd: modules`, 60*time.Second) // boot 2
	resetAfter := time.Since(t0)
	v.phase()
	t.Logf("daemon frozen -> next boot's init: %v (watchdog timeout 10s)", resetAfter.Round(time.Millisecond))
	if resetAfter < 9*time.Second {
		t.Fatalf("VM restarted %v after the freeze: before the 10s watchdog timeout", resetAfter)
	}
	v.expect(`the last reset was by the watchdog.*event=watchdog.reset`, 30*time.Second)
	v.expect(`watchdog armed" timeout=10s last_reset_by_watchdog=true`, 10*time.Second)
	// nic0 is still unplugged: the bond comes up on eth1.
	v.expect(`summary="mode=active-backup up=true active=eth1 slaves=eth0:down,eth1:up"`, 30*time.Second)

	v.console("sipedge-poweroff")
	select {
	case <-v.done:
		if v.err != nil {
			t.Fatalf("QEMU after poweroff: %v", v.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("VM did not power off")
	}
	t.Logf("whole VM run: %v", time.Since(start).Round(time.Millisecond))
}
