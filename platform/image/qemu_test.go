package image

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sipedge/sipedge/hal/testenv"
	"github.com/sipedge/sipedge/hal/testenv/ntptest"
	"github.com/sipedge/sipedge/platform"
)

// TestApplianceInQEMU boots the real image on the qemu-x86_64 profile:
// PID 1 loads the modules, supervises the daemon and keeps the console
// menu running on ttyS0, while the kernel and daemon log on ttyS1. The
// daemon bonds the four NICs, eth0 and eth1 as bond0 (active-backup),
// eth2 and eth3 as bond1 (802.3ad, with no LACP partner), and arms the
// i6300esb watchdog. The operator's menu is driven over ttyS0: banner,
// status, Cores, a Core added and a web password set, both seen
// afterwards. Taking bond0's active NIC's link down moves the bond to the
// other. Freezing the daemon gets the VM reset by the watchdog after one
// timeout (measured from the freeze to QEMU's WATCHDOG event), and the
// next boot says so, in the log and in the menu.
//
// The console: a new box has its first password chosen before the menu;
// log out, a wrong password refused, the right one accepted. At the
// second boot the recovery key is pressed in PID 1's window on ttyS0:
// the daemon clears the password and the console asks for a new one.
// The clock: the VM's RTC starts in 2001 and the daemon's first SNTP
// poll steps it, from a server on the host's loopback reached through
// QEMU's user network on eth0's hub as the gateway 192.0.2.1.
func TestApplianceInQEMU(t *testing.T) {
	qemu := testenv.MustHaveQEMU(t)
	testenv.Short(t, "boots a VM twice (about a minute and a half under TCG)")
	cache := needKernel(t)
	prof, err := platform.Lookup("qemu-x86_64")
	if err != nil {
		t.Fatal(err)
	}
	timeout := prof.Watchdog.Timeout.D() // the image's config says the same
	// The NTP server: on the host's loopback, reached from the VM as its
	// management gateway 192.0.2.1 through QEMU's user network on eth0's
	// hub (slirp forwards what is sent to its host address to 127.0.0.1).
	// The VM's RTC starts in 2001: the daemon's first poll steps it.
	ntpd, err := ntptest.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ntpd.Close()
	_, ntpPort, _ := net.SplitHostPort(ntpd.Addr())
	rootfs := copyRootFS(t, "ntp: [192.0.2.1]", `ntp: ["192.0.2.1:`+ntpPort+`"]`)
	res, err := Build(Options{Binary: testenv.SipedgeBinary(t), Profile: prof.Name, CacheDir: cache,
		RootFS: rootfs, OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	v := bootVM(t, qemu, res, "-rtc", "base=2001-01-01T00:00:00",
		"-netdev", "user,id=u0,net=192.0.2.0/24,host=192.0.2.1,ipv6=off", "-netdev", "hubport,id=u0p,hubid=0,netdev=u0")
	since := func(at time.Time) string { return at.Sub(v.started).Round(100 * time.Millisecond).String() }
	// The operator's port, ttyS0, from the start: PID 1 offers the
	// password recovery there before it starts the daemon and the menu.
	m := v.openMenu()
	m.expect(`Press r within 3 seconds to clear it`, 90*time.Second)
	_, offerEnd := v.expectAt(`initd: console menu"`, 30*time.Second) // nothing pressed: boot goes on

	// Boot 1 (cold): modules, daemon, both bonds with both slaves up.
	// Every line below comes from the log port, ttyS1.
	_, modsAt := v.expectAt(`initd: modules" .*loaded=watchdog,i6300esb,softdog,tls,bonding,e1000`, 90*time.Second)
	v.expect(`initd: console menu" .*device=ttyS0 baud=115200 log=ttyS1`, 10*time.Second)
	_, daemonAt := v.expectAt(`initd: daemon started`, 20*time.Second)
	_, armedAt := v.expectAt(`watchdog armed" timeout=10s last_reset_by_watchdog=false`, 20*time.Second)
	_, bondAt := v.expectAt(`bond status" bond=bond0 summary="mode=active-backup up=true active=eth0 slaves=eth0:up,eth1:up"`, 30*time.Second)
	// 802.3ad: the kernel reports no active slave (only the modes with a
	// primary have one); the bond is up once its aggregator is.
	v.expect(`bond created" bond=bond1 mode=802\.3ad miimon=100ms .*slaves=eth2,eth3`, 10*time.Second)
	_, bond1At := v.expectAt(`bond status" bond=bond1 summary="mode=802\.3ad up=true active=none slaves=eth2:up,eth3:up"`, 30*time.Second)

	// The menu, once the daemon answers: a new box has its password
	// chosen before anything else (the image's console.login).
	firstPassword(t, m, "qemu-Secret-41")
	out := plain(m.expect(`Enter an option: `, 20*time.Second))
	menuAt := time.Now()
	for _, re := range []string{
		`sipedge \S+  -  edge-qemu`, // product, version, hostname
		`node edge-qemu   role edge \(SIP balancer\)   profile single`,
		`management: 192\.0\.2\.11/24 on bond0`,
		`VIP: none`,
		`time: synchronised to 192\.0\.2\.1:\d+ \(last poll: offset \S+, (step|slew)\)`,
		` 0\) Log out`, // no Exit on a serial port
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("banner lacks %q:\n%s", re, out)
		}
	}
	// The clock, from 2001, stepped by the daemon's first good poll.
	step, stepAt := v.expectAt(`timesync: clock stepped" .*offset=(\d+)h`, 90*time.Second)
	if h, _ := strconv.Atoi(step[1]); h < 24*365*20 {
		t.Errorf("the clock was stepped by %sh, want the ~25 years since 2001", step[1])
	}
	v.expect(`event=time\.step`, 10*time.Second)
	t.Logf("boot 1 (QEMU start ->): PID 1 modules loaded %s, recovery offer over %s, daemon started %s, watchdog armed %s, bond0 up with both slaves %s, bond1 (802.3ad) up with both slaves %s, clock stepped from 2001 %s, first password set and menu banner %s (ready)",
		since(modsAt), since(offerEnd), since(daemonAt), since(armedAt), since(bondAt), since(bond1At), since(stepAt), since(menuAt))

	// 1) Status: every subsystem alive, the watchdog armed, both bonds
	// read back through the HAL (bond1's mode as the kernel reports it).
	m.line("1")
	status := plain(m.paged(20 * time.Second))
	for _, re := range []string{
		`node edge-qemu  profile single  platform qemu-x86_64`,
		`subsystems: .*balancer alive`,
		`Watchdog: /dev/watchdog armed, timeout 10s`, `the last reset was not the watchdog's`,
		`Network: links .*bond0 up`, `bond bond0 active-backup, miimon 100ms, up, active slave eth0\n`,
		`slave eth0 MII up, active\n`, `slave eth1 MII up, standby\n`,
		`bond bond1 802\.3ad, miimon 100ms, up, no active slave\n`,
		`slave eth2 MII up, (active|standby)\n`, `slave eth3 MII up, (active|standby)\n`,
		`management 192\.0\.2\.11/24 on bond0, gateway 192\.0\.2\.1 \(config file\)`,
		`Time: synchronised to 192\.0\.2\.1:\d+ \(stratum 2\)`, `since start: \d+ polls, 1 clock steps`,
		`default route via 192\.0\.2\.1 on bond0`,
		`DNS 192\.0\.2\.3:53 \(/etc/resolv\.conf names 192\.0\.2\.3\)`, // network.dns, read back from the image's file
	} {
		if !regexp.MustCompile(re).MatchString(status) {
			t.Errorf("status lacks %q:\n%s", re, status)
		}
	}
	// With no LACP partner each of bond1's ports is its own aggregator
	// (the kernel aggregates ports only behind a partner): the selected
	// one carries the traffic, the other stands by.
	if on, off := len(regexp.MustCompile(`slave eth[23] MII up, active\n`).FindAllString(status, -1)),
		len(regexp.MustCompile(`slave eth[23] MII up, standby\n`).FindAllString(status, -1)); on != 1 || off != 1 {
		t.Errorf("bond1 (802.3ad, no partner) has %d active and %d standing-by slaves, want 1 and 1:\n%s", on, off, status)
	}
	m.expect(`Enter an option: `, 10*time.Second)

	// 2) Cores: none, add one, see it listed; the add is an event in the
	// daemon's log too.
	m.line("2")
	m.expect(`Cores> `, 10*time.Second)
	m.line("1")
	m.expect(`No Cores\.`, 10*time.Second)
	m.expect(`Cores> `, 10*time.Second)
	v.phase()
	for _, l := range []string{"2", "core9", "198.51.100.29:5060", "2", "100"} {
		m.line(l)
	}
	m.expect(`Core core9 added\.`, 15*time.Second)
	m.expect(`Cores> `, 10*time.Second)
	m.line("1")
	list := plain(m.expect(`Cores> `, 10*time.Second))
	if !regexp.MustCompile(`core9\s+198\.51\.100\.29:5060\s+\S+\s+2\s+0/100`).MatchString(list) {
		t.Errorf("Core list after the add:\n%s", list)
	}
	v.expect(`subject=core9`, 10*time.Second)
	m.line("0")
	m.expect(`Enter an option: `, 10*time.Second)

	// 5) Web password, typed twice (not echoed); 7) the event shows it.
	m.line("5")
	m.expect(`New web password: `, 10*time.Second)
	m.line("qemu-Secret-42")
	m.expect(`Again: `, 10*time.Second)
	m.line("qemu-Secret-42")
	t0 := time.Now()
	pw := plain(m.expect(`Web password set\.`, 90*time.Second))
	t.Logf("web password (PBKDF2-SHA256, 600,000 rounds, under TCG) set in %v", time.Since(t0).Round(100*time.Millisecond))
	if strings.Contains(pw, "qemu-Secret-42") {
		t.Errorf("the password was echoed:\n%s", pw)
	}
	m.expect(`Enter an option: `, 10*time.Second)
	m.line("7")
	ev := plain(m.expect(`Enter an option: `, 15*time.Second))
	for _, re := range []string{`web\.password .*web password set`, `core\S* +core9`} {
		if !regexp.MustCompile(re).MatchString(ev) {
			t.Errorf("recent events lack %q:\n%s", re, ev)
		}
	}

	// 0) Log out: a wrong password is refused (an event), the new one
	// lets the operator in again.
	m.line("0")
	m.expect(`Logged out\.`, 10*time.Second)
	m.expect(`Password: `, 10*time.Second)
	m.line("qemu-Secret-41")
	m.expect(`Login incorrect\.`, 90*time.Second)
	v.expect(`event=console\.login_failed`, 10*time.Second)
	m.expect(`Password: `, 10*time.Second)
	m.line("qemu-Secret-42")
	m.expect(`node edge-qemu`, 90*time.Second)
	m.expect(`Enter an option: `, 10*time.Second)
	v.expect(`event=console\.login `, 10*time.Second)

	// 4) A new management gateway (same address: web.listen names it) is
	// stored at once and pending until the daemon's next start; PID 1
	// restarts a killed daemon, which applies it.
	m.line("4")
	for _, l := range []string{"192.0.2.11/24", "192.0.2.254", ""} {
		m.line(l)
	}
	m.expect(`Management address stored: 192\.0\.2\.11/24\.`, 15*time.Second)
	m.expect(`Enter an option: `, 10*time.Second)
	m.line("1")
	if st := plain(m.paged(20 * time.Second)); !regexp.MustCompile(`pending: 192\.0\.2\.11/24 on bond0, gateway 192\.0\.2\.254\n\s+stored; takes effect at the next daemon start`).MatchString(st) ||
		!strings.Contains(st, "default route via 192.0.2.1 on bond0\n") {
		t.Errorf("status after management.set:\n%s", st)
	}
	m.expect(`Enter an option: `, 10*time.Second)
	v.phase()
	v.debug("sipedge-kill")
	v.expect(`CONSOLE SIGKILL pid=\d+ err=<nil>`, 10*time.Second)
	v.expect(`initd: daemon started`, 20*time.Second)
	v.expect(`management gateway" interface=bond0 gateway=192\.0\.2\.254`, 20*time.Second)
	v.expect(`management address" interface=bond0 address=192\.0\.2\.11/24 source=runtime`, 10*time.Second)
	v.expect(`watchdog armed" timeout=10s`, 10*time.Second)
	m.line("1")
	if st := plain(m.paged(20 * time.Second)); !strings.Contains(st, "default route via 192.0.2.254 on bond0\n") ||
		!strings.Contains(st, "gateway 192.0.2.254 (set at runtime)") || strings.Contains(st, "pending:") {
		t.Errorf("status after the restart:\n%s", st)
	}
	m.expect(`Enter an option: `, 10*time.Second)

	// Failover: the active NIC loses its link.
	v.phase()
	t0 = time.Now()
	v.monitor("set_link nic0 off")
	v.expect(`bond0: slave eth0 link up -> down`, 10*time.Second)
	v.expect(`bond0: active slave eth0 -> eth1`, 10*time.Second)
	v.expect(`summary="mode=active-backup up=true active=eth1 slaves=eth0:down,eth1:up"`, 10*time.Second)
	t.Logf("set_link off -> daemon reports the new active slave: %v", time.Since(t0).Round(time.Millisecond))

	// A hung daemon: nothing feeds the watchdog, the VM resets. The
	// freeze's moment is when PID 1's answer reaches the log port; the
	// reset's is QEMU's WATCHDOG event.
	v.phase()
	v.debug("sipedge-pid")
	v.expect(`CONSOLE daemon pid=\d+ starts=2`, 10*time.Second)
	v.phase()
	v.debug("sipedge-freeze")
	_, frozeAt := v.expectAt(`CONSOLE SIGSTOP pid=\d+ err=<nil>`, 10*time.Second)
	wd := v.qmpEvent("WATCHDOG", frozeAt.Add(-time.Second), timeout+30*time.Second)
	reset := v.qmpEvent("RESET", wd.At, 10*time.Second)
	// The next boot: the operator, at the console port, asks for the
	// password recovery within PID 1's window.
	m.skip()
	m.expect(`Press r within 3 seconds to clear it`, 90*time.Second)
	m.key("r")
	m.expect(`the console and web password will be cleared`, 10*time.Second)
	if !strings.Contains(string(wd.Data), `"reset"`) {
		t.Errorf("WATCHDOG event %s, want action reset", wd.Data)
	}
	resetAfter := wd.At.Sub(frozeAt)
	// The daemon feeds every timeout/4 (at most 1s): the last keepalive
	// was up to one feeding period before the freeze.
	feed := min(timeout/4, time.Second)
	lo, hi := timeout-feed-500*time.Millisecond, timeout+3*time.Second
	_, boot2At := v.expectAt(`initd: modules`, 60*time.Second)
	t.Logf("watchdog: daemon frozen -> QMP WATCHDOG %v (timeout %v, feeding every %v: expected %v..%v), -> RESET +%v, -> next boot's PID 1 modules %v",
		resetAfter.Round(time.Millisecond), timeout, feed, timeout-feed, timeout,
		reset.At.Sub(wd.At).Round(time.Millisecond), boot2At.Sub(frozeAt).Round(100*time.Millisecond))
	if resetAfter < lo || resetAfter > hi {
		t.Errorf("the watchdog reset the VM %v after the freeze, want %v..%v", resetAfter, lo, hi)
	}
	v.phase()
	v.expect(`the last reset was by the watchdog.*event=watchdog.reset`, 30*time.Second)
	v.expect(`watchdog armed" timeout=10s last_reset_by_watchdog=true`, 10*time.Second)
	// nic0 is still unplugged: the bond comes up on eth1.
	_, bond2At := v.expectAt(`summary="mode=active-backup up=true active=eth1 slaves=eth0:down,eth1:up"`, 30*time.Second)
	t.Logf("boot 2: reset -> bond0 up on eth1 %v", bond2At.Sub(reset.At).Round(100*time.Millisecond))

	// PID 1 passed the recovery on; the daemon cleared the password.
	v.expect(`initd: console password recovery requested at boot`, 10*time.Second)
	v.expect(`event=console\.password_reset`, 10*time.Second)

	// The menu on the same port, restarted by the new PID 1, has a new
	// password chosen, and says the watchdog reset the box.
	firstPassword(t, m, "qemu-Secret-43")
	m.expect(`(?s)node edge-qemu.*Enter an option: `, 20*time.Second)
	m.line("1")
	if st := plain(m.paged(20 * time.Second)); !strings.Contains(st, "the last reset was the watchdog's") {
		t.Errorf("status after the watchdog reset:\n%s", st)
	}

	v.debug("sipedge-poweroff")
	select {
	case <-v.done:
		if v.err != nil {
			t.Fatalf("QEMU after poweroff: %v", v.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("VM did not power off")
	}
	t.Logf("whole VM run: %v", time.Since(v.started).Round(time.Millisecond))
}

// firstPassword waits on the menu port until the console reaches the
// daemon, which has no password yet, and chooses pw as the box's first
// password.
func firstPassword(t *testing.T, m *menu, pw string) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); ; {
		out := plain(m.expect(`New password: |Press Enter to try again\. `, 60*time.Second))
		if strings.HasSuffix(out, "New password: ") {
			if !strings.Contains(out, "No password is set on this box") {
				t.Errorf("the console asks for a new password without saying why:\n%s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the console never reached the daemon:\n%s", out)
		}
		time.Sleep(time.Second)
		m.line("")
	}
	m.line(pw)
	m.expect(`Again: `, 10*time.Second)
	m.line(pw)
	t0 := time.Now()
	if out := plain(m.expect(`Password set\.`, 90*time.Second)); strings.Contains(out, pw) {
		t.Errorf("the password was echoed:\n%s", out)
	}
	t.Logf("first password set (PBKDF2-SHA256, 600,000 rounds, under TCG) in %v", time.Since(t0).Round(100*time.Millisecond))
}

// copyRootFS copies the repository's rootfs/ into a temporary directory,
// replacing old by new in the box's configuration.
func copyRootFS(t *testing.T, old, new string) string {
	t.Helper()
	src := filepath.Join(repoRoot(t), "rootfs")
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if rel == filepath.Join("etc", "sipedge", "config.yaml") {
			if !strings.Contains(string(b), old) {
				return fmt.Errorf("%s lacks %q", p, old)
			}
			b = []byte(strings.Replace(string(b), old, new, 1))
		}
		return os.WriteFile(to, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}
