package console_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/sipedge/sipedge/daemon/internal/daemontest"
	"github.com/sipedge/sipedge/hal/testenv"
)

// term is the operator's side of a pseudo-terminal running the console.
type term struct {
	t    *testing.T
	f    *os.File
	mu   sync.Mutex
	buf  bytes.Buffer
	seen int // what expect has consumed
}

func (tm *term) read() {
	b := make([]byte, 4096)
	for {
		n, err := tm.f.Read(b)
		tm.mu.Lock()
		tm.buf.Write(b[:n])
		tm.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// expect waits for re in the output after what was already matched.
func (tm *term) expect(re string) string {
	tm.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(15 * time.Second)
	for {
		tm.mu.Lock()
		out := tm.buf.String()[tm.seen:]
		loc := rx.FindStringIndex(out)
		if loc != nil {
			tm.seen += loc[1]
		}
		tm.mu.Unlock()
		if loc != nil {
			return out[:loc[1]]
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("console: no %q within 15s; output since the last match:\n%s", re, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (tm *term) send(s string) {
	tm.t.Helper()
	if _, err := tm.f.WriteString(s); err != nil {
		tm.t.Fatalf("write to console: %v", err)
	}
}

// line types s and Enter (a terminal sends CR).
func (tm *term) line(s string) { tm.send(s + "\r") }

const menuPrompt = `Enter an option: `

func startDaemon(t *testing.T, extra ...string) (cfgPath string, ctl func(args ...string) string) {
	t.Helper()
	d := startDaemonWith(t, extra...)
	ctl = func(args ...string) string {
		t.Helper()
		out, errOut, code := d.Ctl(args...)
		if code != 0 {
			t.Fatalf("sipedge ctl %v: exit %d\n%s%s", args, code, out, errOut)
		}
		return out
	}
	return d.Config, ctl
}

// startDaemonWith starts the real daemon on loopback with one Core that
// does not answer, and extra YAML appended to its configuration.
func startDaemonWith(t *testing.T, extra ...string) *daemontest.Daemon {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	coreAddr := pc.LocalAddr().String()
	pc.Close() // a Core that does not answer: it stays listed
	d := daemontest.New(t)
	d.WriteConfig(fmt.Sprintf(`node: {name: edge-con, profile: single, platform: generic-x86_64, data_dir: %q}
log: {level: warn}
web: {listen: "127.0.0.1:%d", open_to: [127.0.0.0/8]}
sip:
  listen: ["udp:127.0.0.1:%d"]
  cores:
    - {name: core1, address: %q}
%s`, d.DataDir(), testenv.FreePort(t), testenv.FreePort(t), coreAddr, strings.Join(extra, "\n")))
	d.Start()
	return d
}

// startConsole runs `sipedge console ARGS` on a pseudo-terminal of 80x24;
// exited yields its end.
func startConsole(t *testing.T, bin string, args ...string) (*term, chan error) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"console"}, args...)...)
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		f.Close()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	tm := &term{t: t, f: f}
	go tm.read()
	return tm, exited
}

// TestConsoleOverPTY drives `sipedge console` of the real binary over a
// pseudo-terminal, expect-style, through every menu path.
func TestConsoleOverPTY(t *testing.T) {
	testenv.Short(t, "starts the daemon and the console")
	bin := testenv.SipedgeBinary(t)
	cfgPath, ctl := startDaemon(t)
	original, _ := os.ReadFile(cfgPath)

	tm, exited := startConsole(t, bin, "-config", cfgPath, "-shell", "-")

	// A new box has no password: the console has one chosen before the
	// menu (login is on by default in a configuration file).
	tm.expect(`(?s)sipedge .*No password is set on this box.*New password: `)
	tm.line("console secret 0")
	tm.expect(`Again: `)
	tm.line("console secret 0")
	if got := tm.expect(`Password set\.`); strings.Contains(got, "console secret") {
		t.Errorf("the password was echoed: %q", got)
	}

	// Banner.
	banner := tm.expect(`(?s)sipedge .*?` + menuPrompt)
	for _, want := range []string{"edge-con", "role edge (SIP balancer)", "profile single", "management: not configured", "VIP: none", "1) Status", "9) Reset to factory defaults", "0) Exit"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}
	for _, l := range strings.Split(banner, "\n") {
		if n := len([]rune(strings.TrimRight(l, "\r"))); n > 80 {
			t.Errorf("line wider than 80 columns (%d): %q", n, l)
		}
	}

	// ^C and ^Z do not stop it: ^C cancels the prompt.
	tm.send("12\x03")
	tm.expect(`\^C`)
	tm.expect(menuPrompt)
	tm.send("\x1a")
	tm.line("")
	tm.expect(menuPrompt)

	// 1) Status.
	tm.line("1")
	tm.expect(`node edge-con +profile single`)
	// A readable summary, not a flattened key dump.
	status := tm.expect(`-- more: Enter, or q to stop -- |Press Enter to continue\. `)
	for _, want := range []string{"SIP balancer (", "calls up 0, dialogs 0; Cores ", "core1 ", "since start: 0 calls routed", "Edge: 0 sources banned now"} {
		if !strings.Contains(status, want) {
			t.Errorf("status lacks %q:\n%s", want, status)
		}
	}
	t.Logf("status:\n%s", status)
	for _, junk := range []string{"counts.", "<nil>", ": 0\r", "stats."} {
		if strings.Contains(status, junk) {
			t.Errorf("status has a flattened key dump (%q):\n%s", junk, status)
		}
	}
	if strings.HasSuffix(status, "-- ") {
		tm.line("q") // stop paging; "Press Enter" follows
	}
	tm.line("")
	tm.expect(menuPrompt)

	// 2) Cores: list, add, drain, enable, remove (with confirmation).
	tm.line("2")
	tm.expect(`Cores> `)
	tm.line("1")
	tm.expect(`core1 `)
	tm.expect(`Cores> `)
	tm.line("2")
	tm.expect(`Core name: `)
	tm.line("core3")
	tm.expect(`Address \(IP:port\): `)
	tm.line("127.0.0.1:5999")
	tm.expect(`Weight \[1\]: `)
	tm.line("2")
	tm.expect(`Max calls .*: `)
	tm.line("10")
	tm.expect(`Core core3 added\.`)
	tm.line("3")
	tm.expect(`Core name: `)
	tm.line("core1")
	tm.expect(`Core core1: drain done\.`)
	if out := ctl("-json", "cores"); !regexp.MustCompile(`(?s)"name": "core1".*?"state": "draining"`).MatchString(out) {
		t.Errorf("ctl cores after the console drain:\n%s", out)
	}
	tm.line("4")
	tm.expect(`Core name: `)
	tm.line("core1")
	tm.expect(`Core core1: enable done\.`)
	tm.line("6")
	tm.expect(`Core name: `)
	tm.line("core3")
	tm.expect(`Remove Core core3\? \[y/N\]: `)
	tm.line("y")
	tm.expect(`Core core3: remove done\.`)
	tm.line("3")
	tm.expect(`Core name: `)
	tm.line("nosuch")
	tm.expect(`Failed: .*nosuch`)
	tm.line("0")
	tm.expect(menuPrompt)

	// 3) Failover on a box without VIPs: every entry, back to automatic
	// (vip.auto) among them, says so without asking for a group.
	tm.line("3")
	tm.expect(`4\) end a release or take-over \(back to automatic\)`)
	tm.expect(`Failover> `)
	tm.line("1")
	tm.expect(`vip: not available on this box\.`)
	for _, o := range []struct{ option, method string }{{"2", "vip.release"}, {"3", "vip.takeover"}, {"4", "vip.auto"}} {
		tm.expect(`Failover> `)
		tm.line(o.option)
		if got := tm.expect(regexp.QuoteMeta(o.method) + `: not available on this box\.`); strings.Contains(got, "VIP group") {
			t.Errorf("option %s asked for a group on a box without VIPs: %q", o.option, got)
		}
	}
	tm.expect(`Failover> `)
	tm.line("0")
	tm.expect(menuPrompt)

	// 4) Management address, shown in the banner afterwards.
	tm.line("4")
	tm.expect(`Address \(CIDR`)
	tm.line("192.0.2.11/24")
	tm.expect(`Gateway`)
	tm.line("198.51.100.1")
	tm.expect(`Interface`)
	tm.line("")
	tm.expect(`Failed: .*not inside 192\.0\.2\.0/24`)
	tm.expect(menuPrompt)
	tm.line("4")
	tm.expect(`Address \(CIDR`)
	tm.line("192.0.2.11/24")
	tm.expect(`Gateway`)
	tm.line("192.0.2.1")
	tm.expect(`Interface`)
	tm.line("eth0")
	tm.expect(`Management address stored: 192\.0\.2\.11/24\.`)
	tm.line("")
	tm.expect(`management: 192\.0\.2\.11/24 on eth0 \(set at runtime\)`)
	tm.expect(menuPrompt)

	// 5) Web password: typed twice, not echoed.
	tm.line("5")
	tm.expect(`New web password: `)
	tm.line("console secret 1")
	tm.expect(`Again: `)
	tm.line("console secret 1")
	got := tm.expect(`Web password set\.`)
	if strings.Contains(got, "console secret") {
		t.Errorf("the password was echoed: %q", got)
	}
	tm.expect(menuPrompt)

	// 6) Ping (ICMP needs root or ping_group_range).
	tm.line("6")
	tm.expect(`Host to ping: `)
	tm.line("127.0.0.1")
	if os.Geteuid() == 0 {
		tm.expect(`4 sent, 4 received, 0% loss`)
	} else {
		tm.expect(`received|no ICMP socket`)
	}
	tm.expect(menuPrompt)

	// 7) Events: the changes made above are there.
	tm.line("7")
	ev := tm.expect(menuPrompt)
	for _, want := range []string{"web.password", "network.management", "daemon.start"} {
		if !strings.Contains(ev, want) {
			t.Errorf("events lack %s:\n%s", want, ev)
		}
	}

	// 8) Restore: nothing kept yet; then a changed file is reloaded and
	// restored.
	tm.line("8")
	tm.expect(`Restore the previous configuration\? \[y/N\]: `)
	tm.line("y")
	tm.expect(`Failed: no previous configuration kept yet`)
	changed := strings.Replace(string(original), "level: warn", "level: error", 1)
	if err := os.WriteFile(cfgPath, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	ctl("config", "reload")
	tm.line("8")
	tm.expect(`Restore the previous configuration\? \[y/N\]: `)
	tm.line("y")
	tm.expect(`Restored .*config\.yaml and reloaded\.`)
	if now, _ := os.ReadFile(cfgPath); !bytes.Equal(now, original) {
		t.Errorf("restored file differs from the original:\n%s", now)
	}
	tm.expect(menuPrompt)

	// 9) Factory reset: anything but RESET cancels; RESET wipes.
	tm.line("9")
	tm.expect(`Type RESET to confirm`)
	tm.line("yes")
	tm.expect(`Factory reset cancelled\.`)
	tm.expect(menuPrompt)
	tm.line("9")
	tm.expect(`Type RESET to confirm`)
	tm.line("RESET")
	tm.expect(`Runtime changes wiped\.`)
	if out := ctl("events"); !strings.Contains(out, "runtime changes wiped (factory defaults) from the serial console") {
		t.Errorf("the factory reset is not an event naming the console:\n%s", out)
	}
	tm.line("")
	tm.expect(`management: not configured`)
	tm.expect(menuPrompt)

	// 10) Reboot in a dev run says why not; 11) no shell.
	tm.line("10")
	tm.expect(`Reboot the box now\? \[y/N\]: `)
	tm.line("y")
	tm.expect(`Failed: reboot is only available in the appliance image`)
	tm.line("11")
	tm.expect(`There is no shell in this image\.`)
	tm.expect(menuPrompt)

	// 0) Exit.
	tm.line("0")
	tm.expect(`Bye\.`)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("console exit: %v", err)
		}
		exited <- nil
	case <-time.After(10 * time.Second):
		t.Error("console did not exit after 0")
	}
}
