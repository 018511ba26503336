package failover

import (
	"fmt"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/sipedge/sipedge/hal/testenv"
)

// TestNetnsHeartbeatCut is issue 7's fault test "heartbeat link cut
// between the two boxes and healed: one VIP holder after healing, within
// one heartbeat". The heartbeat runs on its own veth pair between A and
// B (198.51.100.0/24), apart from the client LAN, so cutting it (link
// down on A's end) leaves the LAN up: both boxes then take the VIP
// (expected split brain). When the link comes back, the loser (B: lower
// priority) must delete the VIP within one heartbeat interval (100 ms)
// plus slack, by `ip monitor address` timestamps, and A keeps it.
func TestNetnsHeartbeatCut(t *testing.T) {
	testenv.MustHaveNetns(t)
	testenv.Short(t, "runs two daemons in network namespaces for about 8 s")
	sipedgeBinary(t)
	l := newLab(t)
	run(t, "ip", "-n", l.a, "link", "add", "hb0", "type", "veth", "peer", "name", "hb0", "netns", l.b)
	for _, h := range []struct{ ns, addr string }{{l.a, "198.51.100.11/24"}, {l.b, "198.51.100.12/24"}} {
		run(t, "ip", "-n", h.ns, "addr", "add", h.addr, "dev", "hb0")
		run(t, "ip", "-n", h.ns, "link", "set", "hb0", "up")
	}
	l.services(l.a, "A")
	l.services(l.b, "B")
	monA, monB := l.monitor(l.a), l.monitor(l.b)
	time.Sleep(200 * time.Millisecond)
	A := &box{name: "edge-a", ns: l.a, cfg: l.config("edge-a", "198.51.100.11", "198.51.100.12", "main", 150)}
	B := &box{name: "edge-b", ns: l.b, cfg: l.config("edge-b", "198.51.100.12", "198.51.100.11", "backup", 100)}
	l.start(A)
	l.start(B)
	l.waitState(A, "master", 5*time.Second)
	l.waitState(B, "backup", 5*time.Second)
	p := l.probe()
	time.Sleep(300 * time.Millisecond)

	// The heal is logged; the bound leaves a busy host room, and B's
	// reason tells the mechanism (split brain resolution on the first
	// heartbeat, not failback after stable_for).
	const interval, slack = 100 * time.Millisecond, 900 * time.Millisecond
	const cycles = 3
	var heals []time.Duration
	for i := 0; i < cycles; i++ {
		cutAt := time.Now()
		run(t, "ip", "-n", l.a, "link", "set", "hb0", "down")
		l.waitState(B, "master", 2*time.Second)
		time.Sleep(200 * time.Millisecond)
		if sa := l.state(A); sa != "master" {
			t.Fatalf("cycle %d: A is %s while cut, want master (split brain expected)", i, sa)
		}
		bAdd := lastEvent(monB.snapshot(), true)
		if bAdd.Before(cutAt) {
			t.Fatalf("cycle %d: ip monitor in B saw no VIP add after the cut", i)
		}
		t.Logf("cycle %d: cut; B took the VIP %v after the cut (deadtime 300 ms): split brain", i, bAdd.Sub(cutAt).Round(time.Millisecond))

		healAt := time.Now()
		run(t, "ip", "-n", l.a, "link", "set", "hb0", "up")
		l.waitState(B, "backup", 2*time.Second)
		l.wantReason(B, "split brain")
		time.Sleep(200 * time.Millisecond)
		bDel := lastEvent(monB.snapshot(), false)
		if bDel.Before(healAt) {
			t.Fatalf("cycle %d: ip monitor in B saw no VIP delete after the heal", i)
		}
		heal := bDel.Sub(healAt)
		heals = append(heals, heal)
		if la := lastEvent(monA.snapshot(), false); la.After(cutAt) {
			t.Errorf("cycle %d: A deleted the VIP at %v (it is preferred: it keeps it)", i, la.Sub(healAt))
		}
		if sa := l.state(A); sa != "master" {
			t.Errorf("cycle %d: A %s after the heal", i, sa)
		}
		_, lost, outage, boxes := p.window(healAt, time.Now())
		t.Logf("cycle %d: healed; one holder (A) %v after the link came up; probes after the heal: %d lost (outage %v), answered by %v", i, heal.Round(100*time.Microsecond), lost, outage, boxes)
		if heal > interval+slack {
			t.Errorf("cycle %d: two holders for %v after the heal, want within one heartbeat (%v) + %v", i, heal, interval, slack)
		}
		time.Sleep(300 * time.Millisecond)
	}
	sort.Slice(heals, func(i, j int) bool { return heals[i] < heals[j] })
	t.Logf("heal to one holder over %d cycles: %s", cycles, fmtDurs(heals))
	p.close()
	l.stop(A, syscall.SIGTERM)
	l.stop(B, syscall.SIGTERM)
	if t.Failed() {
		t.Logf("A log:\n%s\nB log:\n%s", l.tail(A), l.tail(B))
	}
}

// lastEvent is the time of the last VIP add (add) or delete in ev.
func lastEvent(ev []addrEvent, add bool) time.Time {
	for i := len(ev) - 1; i >= 0; i-- {
		if ev[i].add == add {
			return ev[i].at
		}
	}
	return time.Time{}
}

func fmtDurs(ds []time.Duration) string {
	s := ""
	for i, d := range ds {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprint(d.Round(100 * time.Microsecond))
	}
	return s
}
