package replica_test

import (
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/internal/daemontest"
	"github.com/sipedge/sipedge/daemon/internal/sipptest"
	"github.com/sipedge/sipedge/hal/testenv"
)

// TestNetnsPairWithPreviousRelease runs box A on the previous release's
// binary and box B on this one (namespaces se15r*, addresses as in
// TestNetnsHotStandby). A streams to B: B mirrors 20 calls set up
// through A. A is killed, B takes the VIP; A restarts on the previous
// release as standby and B streams to it: A mirrors the same calls, and
// as they end through B, A's mirror empties. Every call succeeds.
func TestNetnsPairWithPreviousRelease(t *testing.T) {
	testenv.MustHaveNetns(t)
	testenv.MustHaveSIPp(t)
	testenv.Short(t, "builds the previous release and runs it beside this one in network namespaces for about 45 s")
	prev := daemontest.PreviousBinary(t)
	l := newHSLab(t, "se15r")
	cur := l.bin
	core1 := l.sipp("core1", l.ns["cores"], hsCore1, 5060, 90*time.Second, "-sf", "testdata/core_uas.xml")
	core2 := l.sipp("core2", l.ns["cores"], hsCore2, 5060, 90*time.Second, "-sf", "testdata/core_uas.xml")
	A := l.box("edge-a", "main", "192.0.2.11", "192.0.2.12")
	B := l.box("edge-b", "backup", "192.0.2.12", "192.0.2.11")
	startWith := func(b *hsBox, bin string) {
		l.bin = bin
		l.start(b)
		l.bin = cur
	}
	startWith(A, prev)
	l.wait("A (previous) master", 10*time.Second, func() bool { return l.vipState(A) == "master" }, A)
	startWith(B, cur)
	l.wait("B (this release) mirrors A (previous)", 10*time.Second, func() bool {
		return l.replica(A).Connected && l.replica(B).Connected && l.vipState(B) == "backup"
	}, A, B)

	const n = 20
	calls := l.sipp("calls", l.ns["cli"], hsCli, 5070, 60*time.Second, hsVIP+":5060", "-recv_timeout", "5000",
		"-sf", "testdata/caller_uac.xml", "-m", strconv.Itoa(n), "-r", "20", "-d", "15000")
	same := func(x, y *hsBox) func() bool {
		return func() bool {
			cx, dx := l.counts(x)
			cy, dy := l.counts(y)
			return dx == n && dy == n && cx["core1"] == cy["core1"] && cx["core2"] == cy["core2"]
		}
	}
	l.wait("calls up on A (previous) and mirrored on B", 8*time.Second, same(A, B), A, B)

	l.stop(A, syscall.SIGKILL)
	exec.Command("ip", "-n", l.ns["a"], "addr", "del", hsVIP+"/24", "dev", "eth0").Run()
	l.wait("B takes the VIP and streams", 3*time.Second, func() bool { return l.vipState(B) == "master" && l.replica(B).Role == "active" }, B)
	startWith(A, prev)
	l.wait("A (previous) mirrors B (this release)", 10*time.Second, func() bool {
		return l.replica(A).Connected && l.replica(B).Connected && same(A, B)()
	}, A, B)

	calls.Wait(40 * time.Second)
	l.wait("the calls ended through B, and on A's mirror", 5*time.Second, func() bool {
		_, da := l.counts(A)
		_, db := l.counts(B)
		return da == 0 && db == 0
	}, A, B)
	if ok, failed := calls.Stat("SuccessfulCall(C)"), calls.Stat("FailedCall(C)"); ok != n || failed != 0 {
		t.Errorf("calls: %d successful, %d failed; want %d and 0\n%s", ok, failed, n, calls.Output())
	}
	l.wait("the Cores' statistics show no call up", 5*time.Second, func() bool { // written every second
		return core1.Stat("CurrentCall") == 0 && core2.Stat("CurrentCall") == 0
	}, A, B)
	for _, c := range []*sipptest.Proc{core1, core2} {
		if f := c.Stat("FailedCall(C)"); f != 0 {
			t.Errorf("%s: %d failed", c.Name, f)
		}
	}
	sa, sb := l.replica(A), l.replica(B)
	t.Logf("A (previous, standby): %v\nB (this release, active): %v", sa.Counters, sb.Counters)
	for _, k := range []string{"rejected_bad_mac", "rejected_malformed", "rejected_sequence", "rejected_oversize", "resyncs", "refused"} {
		if sa.Counters[k]+sb.Counters[k] != 0 {
			t.Errorf("%s: A %d, B %d", k, sa.Counters[k], sb.Counters[k])
		}
	}
	// B streamed the calls' ends (their start came in the snapshot).
	if sb.Counters["sessions"] != 2 || sb.Counters["events_sent"] < n || sa.Counters["events_applied"] < n {
		t.Errorf("B: %d sessions (one each way), %d events sent, A applied %d; want 2 and >= %d", sb.Counters["sessions"], sb.Counters["events_sent"], sa.Counters["events_applied"], n)
	}
	l.stop(A, syscall.SIGTERM)
	l.stop(B, syscall.SIGTERM)
}
