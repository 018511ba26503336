package image

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sipedge/sipedge/hal/testenv"
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
func TestApplianceInQEMU(t *testing.T) {
	qemu := testenv.MustHaveQEMU(t)
	testenv.Short(t, "boots a VM twice (about a minute and a half under TCG)")
	cache := needKernel(t)
	prof, err := platform.Lookup("qemu-x86_64")
	if err != nil {
		t.Fatal(err)
	}
	timeout := prof.Watchdog.Timeout.D() // the image's config says the same
	res, err := Build(Options{Binary: testenv.SipedgeBinary(t), Profile: prof.Name, CacheDir: cache,
		RootFS: filepath.Join(repoRoot(t), "rootfs"), OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	v := bootVM(t, qemu, res)
	since := func(at time.Time) string { return at.Sub(v.started).Round(100 * time.Millisecond).String() }

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

	// The operator's port, ttyS0: the banner once the daemon answers.
	m := v.openMenu()
	var menuAt time.Time
	for deadline := time.Now().Add(30 * time.Second); ; {
		m.line("") // Enter redraws the banner
		out := plain(m.expect(`Enter an option: `, 20*time.Second))
		if strings.Contains(out, "node edge-qemu") {
			menuAt = time.Now()
			banner := []string{
				`sipedge \S+  -  edge-qemu`, // product, version, hostname
				`node edge-qemu   role edge \(SIP balancer\)   profile single`,
				`management: 192\.0\.2\.11/24 on bond0`,
				`VIP: none`,
				` 0\) Show the banner again`, // no Exit on a serial port
			}
			for _, re := range banner {
				if !regexp.MustCompile(re).MatchString(out) {
					t.Errorf("banner lacks %q:\n%s", re, out)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the menu never showed the daemon's banner:\n%s", out)
		}
		time.Sleep(time.Second)
	}
	t.Logf("boot 1 (QEMU start ->): PID 1 modules loaded %s, daemon started %s, watchdog armed %s, bond0 up with both slaves %s, bond1 (802.3ad) up with both slaves %s, menu banner from the daemon %s (ready)",
		since(modsAt), since(daemonAt), since(armedAt), since(bondAt), since(bond1At), since(menuAt))

	// 1) Status: every subsystem alive, the watchdog armed, both bonds
	// read back through the HAL (bond1's mode as the kernel reports it).
	m.line("1")
	status := plain(m.paged(20 * time.Second))
	for _, re := range []string{
		`node edge-qemu  profile single  platform qemu-x86_64`,
		`subsystems: .*balancer alive`,
		`\[watchdog\]`, `armed: true`, `last_reset_by_watchdog: false`,
		`\[network\]`, `bonds\.0\.active_slave: eth0`, `bonds\.0\.slaves\.1\.mii_up: true`,
		`bonds\.1\.name: bond1\n`, `bonds\.1\.mode: 802\.3ad\n`, `bonds\.1\.miimon: 100ms\n`, `bonds\.1\.up: true\n`, `bonds\.1\.active_slave: \n`,
		`bonds\.1\.slaves\.0\.name: eth2\n`, `bonds\.1\.slaves\.0\.mii_up: true\n`,
		`bonds\.1\.slaves\.1\.name: eth3\n`, `bonds\.1\.slaves\.1\.mii_up: true\n`,
		`management\.gateway: 192\.0\.2\.1\n`, `management\.source: configuration`,
		`default_routes\.0\.gateway: 192\.0\.2\.1\n`, `default_routes\.0\.interface: bond0`,
	} {
		if !regexp.MustCompile(re).MatchString(status) {
			t.Errorf("status lacks %q:\n%s", re, status)
		}
	}
	// With no LACP partner each of bond1's ports is its own aggregator
	// (the kernel aggregates ports only behind a partner): the selected
	// one carries the traffic, the other stands by.
	if on, off := len(regexp.MustCompile(`bonds\.1\.slaves\.[01]\.active: true\n`).FindAllString(status, -1)),
		len(regexp.MustCompile(`bonds\.1\.slaves\.[01]\.active: false\n`).FindAllString(status, -1)); on != 1 || off != 1 {
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
	if st := plain(m.paged(20 * time.Second)); !regexp.MustCompile(`management\.pending\.gateway: 192\.0\.2\.254\n(.*\n)*.*management\.pending\.note: stored; takes effect at the next daemon start`).MatchString(st) ||
		!strings.Contains(st, "default_routes.0.gateway: 192.0.2.1\n") {
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
	if st := plain(m.paged(20 * time.Second)); !strings.Contains(st, "default_routes.0.gateway: 192.0.2.254\n") ||
		!strings.Contains(st, "management.source: runtime") || strings.Contains(st, "management.pending") {
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

	// The menu on the same port, restarted by the new PID 1, says so too.
	m.skip()
	for deadline := time.Now().Add(30 * time.Second); ; {
		m.line("")
		if out := plain(m.expect(`Enter an option: `, 20*time.Second)); strings.Contains(out, "node edge-qemu") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the menu did not come back after the watchdog reset")
		}
		time.Sleep(time.Second)
	}
	m.line("1")
	if st := plain(m.paged(20 * time.Second)); !strings.Contains(st, "last_reset_by_watchdog: true") {
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
