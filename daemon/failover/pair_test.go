package failover

import (
	"bytes"
	"testing"
	"time"
)

// TestPairSummaryExchanged: each box's summary reaches the other with its
// heartbeats; the peer's groups, last heard and "unreachable since" follow
// what arrives; a forged heartbeat carrying a summary changes nothing.
func TestPairSummaryExchanged(t *testing.T) {
	lone := newSim(t)
	n := lone.add("edge-a", groupOpts(RoleMain, 150))
	n.opt.Peers = []string{"192.0.2.12:694"}
	lone.boot(n)
	lone.run(2 * time.Second)
	if got := n.m.Pair(); len(got) != 1 || got[0].Address != "192.0.2.12:694" || got[0].Alive ||
		got[0].UnreachableSince == nil || !got[0].UnreachableSince.Equal(t0) {
		t.Fatalf("a peer never heard: %+v, want its address, unreachable since the start (%v)", got, t0)
	}

	s, a, b := pair(t, nil)
	if err := a.m.SetSummary([]byte(`{"v":"a1"}`)); err != nil {
		t.Fatal(err)
	}
	if err := b.m.SetSummary(bytes.Repeat([]byte{'b'}, MaxSummary)); err != nil {
		t.Fatal(err)
	}
	if err := b.m.SetSummary(make([]byte, MaxSummary+1)); err == nil {
		t.Fatal("a summary above MaxSummary was accepted")
	}
	s.run(time.Second)
	pa, pb := a.m.Pair(), b.m.Pair()
	if len(pb) != 1 || pb[0].Node != "edge-a" || string(pb[0].Summary) != `{"v":"a1"}` || !pb[0].Alive || pb[0].UnreachableSince != nil {
		t.Fatalf("B's view of A: %+v", pb)
	}
	if len(pb[0].Groups) != 1 || pb[0].Groups[0].State != "master" || !pb[0].Groups[0].Main {
		t.Errorf("B's view of A's groups: %+v", pb[0].Groups)
	}
	if len(pa) != 1 || !bytes.Equal(pa[0].Summary, bytes.Repeat([]byte{'b'}, MaxSummary)) || pa[0].Groups[0].State != "backup" {
		t.Fatalf("A's view of B: %+v", pa)
	}
	if pb[0].Session != SessionProven {
		t.Errorf("session %q", pb[0].Session)
	}

	// A forgery (wrong key) with another summary is dropped.
	forged := sampleMessage()
	forged.Node, forged.Summary = "edge-a", []byte("forged")
	raw, _ := Encode(forged, []byte("another key of 32 bytes........."))
	b.m.receiveFrom(raw, a.addr, s.clock.now)
	if got := b.m.Pair(); string(got[0].Summary) != `{"v":"a1"}` {
		t.Errorf("a forged heartbeat changed the summary to %q", got[0].Summary)
	}

	// A goes silent: after the deadtime B says since when.
	s.kill(a, false)
	heard := b.m.Pair()[0].LastHeard
	s.run(time.Second)
	got := b.m.Pair()[0]
	if got.Alive || got.UnreachableSince == nil || !got.UnreachableSince.Equal(heard) {
		t.Errorf("after A died: %+v, want unreachable since %v", got, heard)
	}
	if got.Ago < 900*time.Millisecond {
		t.Errorf("last heard %v ago, want about 1 s", got.Ago)
	}
}
