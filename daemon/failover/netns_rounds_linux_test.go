package failover

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sipedge/sipedge/hal/testenv"
)

// TestNetnsHandoverRounds measures ordered handovers many times: each
// round is a clean stop of A (B takes over) and A's restart (failback
// after stable_for). It runs only when SIPEDGE_FAILOVER_ROUNDS=N is set
// (N rounds, at most 100; about 2.5 s each), e.g.
//
//	SIPEDGE_FAILOVER_ROUNDS=20 go test ./daemon/failover -run TestNetnsHandoverRounds -v
//
// and fails on any lost probe or any overlap, logging the count per
// handover. SIPEDGE_FAILOVER_PROBE_US sets the probe interval (default
// 10000 µs; 1000 makes a probe land in any gap of a millisecond), and
// SIPEDGE_FAILOVER_BIN runs another build of the daemon (e.g. an older
// one, to compare). SIPEDGE_FAILOVER_KEEP_LOGS=DIR keeps both daemons'
// logs and the ip monitor events there.
func TestNetnsHandoverRounds(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SIPEDGE_FAILOVER_ROUNDS"))
	if n <= 0 {
		t.Skip("set SIPEDGE_FAILOVER_ROUNDS=N to measure N clean-stop + failback rounds")
	}
	n = min(n, 100)
	testenv.MustHaveNetns(t)
	sipedgeBinary(t)
	l := newLab(t)
	l.services(l.a, "A")
	l.services(l.b, "B")
	monA, monB := l.monitor(l.a), l.monitor(l.b)
	time.Sleep(200 * time.Millisecond)
	A := &box{name: "edge-a", ns: l.a, cfg: l.config("edge-a", "192.0.2.11", "192.0.2.12", "main", 150)}
	B := &box{name: "edge-b", ns: l.b, cfg: l.config("edge-b", "192.0.2.12", "192.0.2.11", "backup", 100)}
	l.start(B)
	l.start(A)
	l.waitState(A, "master", 5*time.Second)
	l.waitState(B, "backup", 5*time.Second)
	every := 10 * time.Millisecond
	if us, _ := strconv.Atoi(os.Getenv("SIPEDGE_FAILOVER_PROBE_US")); us >= 200 {
		every = time.Duration(us) * time.Microsecond
	}
	p := l.probeEvery(every)
	time.Sleep(300 * time.Millisecond)

	var stopLost, backLost, stopBad, backBad int
	var stopTimes, backTimes []time.Duration
	for i := 0; i < n; i++ {
		stopAt := time.Now()
		l.stop(A, syscall.SIGTERM)
		l.waitState(B, "master", 2*time.Second)
		time.Sleep(300 * time.Millisecond)
		_, lost, outage, _ := p.window(stopAt, time.Now())
		first := p.firstAnswer(stopAt, "B")
		stopTimes = append(stopTimes, first.Sub(stopAt))
		stopLost += lost
		if lost > 0 {
			stopBad++
			t.Logf("round %d: clean stop lost %d probes (outage %v)", i, lost, outage)
		}

		backAt := time.Now()
		A.cmd = nil
		l.start(A)
		l.waitState(A, "master", 5*time.Second)
		time.Sleep(300 * time.Millisecond)
		_, lost, outage, _ = p.window(backAt, time.Now())
		backTimes = append(backTimes, p.firstAnswer(backAt, "A").Sub(backAt))
		backLost += lost
		if lost > 0 {
			backBad++
			t.Logf("round %d: failback lost %d probes (outage %v)", i, lost, outage)
		}
	}
	p.close()
	ov, nov, noise := overlap(monA.snapshot(), monB.snapshot(), time.Now())
	t.Logf("probes every %v; overlaps under %v (the monitors' error): %v", every, monitorSlack, noise)
	t.Logf("%d rounds: clean stop lost %d probes (%d handovers with a loss), B answers %v..%v after SIGTERM; failback lost %d probes (%d handovers with a loss), A answers %v..%v after its restart; overlap %v in %d intervals",
		n, stopLost, stopBad, minDur(stopTimes), maxDur(stopTimes), backLost, backBad, minDur(backTimes), maxDur(backTimes), ov, nov)
	if stopLost+backLost > 0 {
		t.Errorf("lost probes: %d at clean stops, %d at failbacks", stopLost, backLost)
	}
	if ov > 0 {
		t.Errorf("both boxes held the VIP together %d times, %v in all", nov, ov)
	}
	l.stop(B, syscall.SIGTERM)
	if dir := os.Getenv("SIPEDGE_FAILOVER_KEEP_LOGS"); dir != "" {
		for _, b := range []*box{A, B} {
			data, _ := os.ReadFile(filepath.Join(l.dir, b.name+".log"))
			os.WriteFile(filepath.Join(dir, b.name+".log"), data, 0o644)
		}
		var evs []string
		for _, m := range []struct {
			n  string
			ev []addrEvent
		}{{"A", monA.snapshot()}, {"B", monB.snapshot()}} {
			for _, e := range m.ev {
				evs = append(evs, fmt.Sprintf("%s %s add=%v", e.at.Format("15:04:05.000000"), m.n, e.add))
			}
		}
		sort.Strings(evs)
		os.WriteFile(filepath.Join(dir, "monitor.txt"), []byte(strings.Join(evs, "\n")+"\n"), 0o644)
	}
}

func minDur(ds []time.Duration) time.Duration {
	var m time.Duration
	for i, d := range ds {
		if i == 0 || d < m {
			m = d
		}
	}
	return m.Round(time.Millisecond)
}

func maxDur(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m.Round(time.Millisecond)
}
