package faulttest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sipedge/sipedge/hal/testenv"
)

type statusAnswer struct {
	Store struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	} `json:"store"`
}

// TestDiskFullKeepsRouting puts node.data_dir on a 4 MB tmpfs and fills
// it. Calls keep going through while the daemon tries to write (bans of
// 2,000 flooding sources, a ban table of ~250 kB that no longer fits);
// `ctl status` shows the store's fault; once space returns the bans are
// written, the fault clears, and they survive a restart.
func TestDiskFullKeepsRouting(t *testing.T) {
	testenv.MustHaveRoot(t)
	testenv.MustHaveSIPp(t)
	testenv.Short(t, "disk full under the real binary with SIPp")
	data := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "sipedge-fault", data).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", data).Run() })

	l := newLab(t)
	sec := "  trusted: [127.0.0.1]\n  flood: {requests: 2, per: 10s, ban: 10m}\n"
	cfg := l.config(data, 0, sec)
	runDir := t.TempDir()
	d := startDaemon(t, cfg, runDir)
	waitCoresUp(t, d, 2)

	filler := filepath.Join(data, "filler")
	exec.Command("dd", "if=/dev/zero", "of="+filler, "bs=64k").Run() // until ENOSPC
	if fi, err := os.Stat(filler); err != nil || fi.Size() < 1<<20 {
		t.Fatalf("filler: %v", err)
	}

	const calls = 300
	caller := l.caller(t, calls, 30, 500)
	// 2,000 sources flood a little each: every one is banned, and the
	// ban table the daemon must save outgrows the free space.
	const sources = 2000
	sendFrom(t, l.port, sources, 3)

	var st statusAnswer
	var faultSeen time.Duration
	start := time.Now()
	for end := start.Add(15 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		st = statusAnswer{}
		d.CtlJSON(&st, "status")
		if !st.Store.OK {
			faultSeen = time.Since(start)
			break
		}
	}
	if faultSeen == 0 {
		t.Fatalf("ctl status never reported the full disk: %+v", st)
	}
	t.Logf("ctl status store: ok=%v error=%q (after %v)", st.Store.OK, st.Store.Error, faultSeen.Round(time.Millisecond))
	var b bansAnswer
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		b = bansAnswer{}
		d.CtlJSON(&b, "bans")
		if b.SaveError != "" {
			break
		}
	}
	t.Logf("ctl bans: %d bans in force, save error %q", len(b.Bans), b.SaveError)
	if len(b.Bans) < sources*9/10 || b.SaveError == "" {
		t.Errorf("bans in force %d (want ~%d), save error %q", len(b.Bans), sources, b.SaveError)
	}

	caller.Wait(60 * time.Second)
	ok, failed := caller.Stat("SuccessfulCall(C)"), caller.Stat("FailedCall(C)")
	t.Logf("calls during the full disk: %d ok, %d failed of %d", ok, failed, calls)
	if ok != calls || failed != 0 {
		t.Errorf("calls on a full disk: %d ok, %d failed of %d", ok, failed, calls)
	}

	// Space returns: the next save works and the fault clears.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	recovered := time.Duration(0)
	for end := start.Add(15 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		st, b = statusAnswer{}, bansAnswer{}
		d.CtlJSON(&st, "status")
		d.CtlJSON(&b, "bans")
		if st.Store.OK && b.SaveError == "" {
			recovered = time.Since(start)
			break
		}
	}
	if recovered == 0 {
		t.Fatalf("not recovered 15 s after space returned: status %+v, bans save error %q", st, b.SaveError)
	}
	t.Logf("recovered %v after space returned; %d bans saved", recovered.Round(time.Millisecond), len(b.Bans))
	after := l.caller(t, 50, 25, 200)
	after.Wait(30 * time.Second)
	if n := after.Stat("SuccessfulCall(C)"); n != 50 {
		t.Errorf("calls after recovery: %d of 50", n)
	}

	// The bans written after recovery survive a restart.
	want := len(b.Bans)
	d.stop()
	d2 := startDaemon(t, cfg, runDir)
	b = bansAnswer{}
	d2.CtlJSON(&b, "bans")
	if len(b.Bans) != want && len(b.Bans) < 4096 {
		t.Errorf("bans after restart: %d, want %d", len(b.Bans), want)
	}
}

// sendFrom sends n OPTIONS from each of count loopback sources
// 127.9.x.y to the balancer itself (it answers them; the Cores see none).
func sendFrom(t *testing.T, port, count, n int) {
	t.Helper()
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	for i := 0; i < count; i++ {
		ip := net.IPv4(127, 9, byte(i>>8), byte(i))
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
		if err != nil {
			t.Fatalf("bind %s: %v", ip, err)
		}
		lp := c.LocalAddr().(*net.UDPAddr).Port
		for j := 0; j < n; j++ {
			msg := fmt.Sprintf("OPTIONS sip:127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/UDP %s:%d;branch=z9hG4bK-f%d-%d;rport\r\n"+
				"From: <sip:f@%s>;tag=%d\r\nTo: <sip:probe@127.0.0.1>\r\nCall-ID: f%d-%d@%s\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
				port, ip, lp, i, j, ip, i, i, j, ip)
			c.WriteToUDP([]byte(msg), dst)
		}
		c.Close()
		if i%200 == 199 {
			time.Sleep(20 * time.Millisecond) // stay under the socket buffer
		}
	}
}
