package faulttest

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/sipedge/sipedge/hal/testenv"
)

// TestFloodWhileTrustedCalls: the lab's capacity is 100 calls per second
// (two Cores of 50 calls, calls held 1 s). A trusted caller on 127.0.0.1
// places 40 calls per second for 15 s while an untrusted source
// (127.0.0.2) floods INVITEs at 1,000 per second (ten times the
// capacity). The trusted caller's calls succeed (>= 99 %), the flooder
// is banned (shown by `ctl bans`) within a second, and the daemon's RSS
// stays bounded.
func TestFloodWhileTrustedCalls(t *testing.T) {
	testenv.MustHaveSIPp(t)
	testenv.Short(t, "SIPp flood against the real binary")
	const (
		capacityCPS = 100
		floodCPS    = 10 * capacityCPS
		trustedCPS  = 40
		seconds     = 15
		holdMS      = 1000
	)
	l := newLab(t)
	sec := "  trusted: [127.0.0.1]\n  untrusted: allow\n  flood: {requests: 16, per: 2s, ban: 5m}\n"
	d := startDaemon(t, l.config(t.TempDir(), capacityCPS*holdMS/1000/2, sec), t.TempDir())
	waitCoresUp(t, d, 2)
	rss0 := d.RSSKB()

	caller := l.caller(t, trustedCPS*seconds, trustedCPS, holdMS)
	time.Sleep(time.Second)
	floodStart := time.Now()
	flood := startSIPp(t, "flooder", "127.0.0.2", 60*time.Second, fmt.Sprintf("127.0.0.1:%d", l.port), "-sf", "testdata/flood_invite.xml",
		"-m", strconv.Itoa(floodCPS*(seconds-3)), "-r", strconv.Itoa(floodCPS), "-rate_increase", "0")

	var banAfter time.Duration
	maxRSS := rss0
	for end := time.Now().Add(time.Duration(seconds+10) * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if r := d.RSSKB(); r > maxRSS {
			maxRSS = r
		}
		if banAfter == 0 {
			var b bansAnswer
			d.CtlJSON(&b, "bans")
			for _, x := range b.Bans {
				if x.Source == "127.0.0.2" {
					banAfter = time.Since(floodStart)
				}
			}
		}
		select {
		case <-caller.Done():
			end = time.Now()
		default:
		}
	}
	caller.Wait(30 * time.Second)
	flood.Stop()

	ok, failed := caller.Stat("SuccessfulCall(C)"), caller.Stat("FailedCall(C)")
	sent := flood.Stat("OutgoingCall(C)")
	var b bansAnswer
	d.CtlJSON(&b, "bans")
	pct := 100 * float64(ok) / float64(trustedCPS*seconds)
	t.Logf("trusted caller: %d ok, %d failed of %d (%.2f %%); flooder sent %d INVITEs at %d/s, banned %v after it started, %d of its messages dropped; RSS %d kB before, %d kB max",
		ok, failed, trustedCPS*seconds, pct, sent, floodCPS, banAfter.Round(time.Millisecond), b.Counts["dropped_banned"], rss0, maxRSS)
	if pct < 99 {
		t.Errorf("trusted success %.2f %% < 99 %%", pct)
	}
	if banAfter == 0 {
		t.Fatalf("flooder 127.0.0.2 never shown in ctl bans: %+v", b)
	}
	if banAfter > 3*time.Second {
		t.Errorf("flooder banned only after %v", banAfter)
	}
	if len(b.Bans) != 1 || b.Bans[0].Source != "127.0.0.2" {
		t.Errorf("bans = %+v: want the flooder alone (the trusted caller and the Cores are exempt)", b.Bans)
	}
	if sent > 1000 && b.Counts["dropped_banned"] < uint64(sent)*9/10 {
		t.Errorf("dropped %d of the flooder's %d INVITEs", b.Counts["dropped_banned"], sent)
	}
	if maxRSS > 150*1024 {
		t.Errorf("RSS grew to %d kB under the flood", maxRSS)
	}
	// The ban is cleared by the operator and the source may call again.
	if _, err := d.ctl("bans", "clear", "127.0.0.2"); err != nil {
		t.Fatal(err)
	}
	d.CtlJSON(&b, "bans")
	if len(b.Bans) != 0 {
		t.Errorf("bans after clear: %+v", b.Bans)
	}
}
