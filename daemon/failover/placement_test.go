package failover

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sipedge/sipedge/hal"
)

// arpNet is a Network that can probe ARP (hal.FakeARP).
type arpNet struct {
	*hal.Fake
	*hal.FakeARP
}

var macB = net.HardwareAddr{2, 0, 0, 0, 0, 0x12}

// placementPair boots A and B with fake ARP: B's address answers on
// A's segment when answer is true. Each box has its own address.
func placementPair(t *testing.T, answer bool, mod func(a, b *GroupOptions)) (*sim, *simNode, *simNode, *[]PlacementInfo) {
	s := newSim(t)
	ga, gb := groupOpts(RoleMain, 150), groupOpts(RoleBackup, 100)
	if mod != nil {
		mod(&ga, &gb)
	}
	a, b := s.add("edge-a", ga), s.add("edge-b", gb)
	var seen []PlacementInfo
	a.opt.OnPlacement = func(_ string, info PlacementInfo) { seen = append(seen, info) }
	a.opt.Metrics = NewMetrics(prometheus.NewRegistry())
	for _, n := range []*simNode{a, b} {
		n.arp = hal.NewFakeARP()
		_ = n.hal.AddAddress("eth0", netip.PrefixFrom(n.addr.Addr(), 24))
	}
	if answer {
		a.arp.Answer("eth0", b.addr.Addr(), macB)
	}
	s.boot(a)
	s.boot(b)
	s.run(200 * time.Millisecond)
	return s, a, b, &seen
}

func check(t *testing.T, n *simNode) PlacementInfo {
	t.Helper()
	got := n.m.CheckPlacement(context.Background())
	info, ok := got["sip"]
	if !ok {
		t.Fatalf("no placement result: %v", got)
	}
	return info
}

// TestPlacementPeerOnSegment: the peer answers the ARP probe for its
// heartbeat address (in the VIP's subnet): no finding, metric 1.
func TestPlacementPeerOnSegment(t *testing.T) {
	_, a, _, seen := placementPair(t, true, nil)
	info := check(t, a)
	if !info.OK || len(info.Findings) != 0 || info.PeerMAC != macB.String() || info.PeerAddress != "192.0.2.12" {
		t.Errorf("placement %+v, want ok with B's MAC", info)
	}
	if v := testutil.ToFloat64(a.m.met.placement.WithLabelValues("sip")); v != 1 {
		t.Errorf("sipedge_vip_placement_ok %v, want 1", v)
	}
	if len(*seen) != 1 || !(*seen)[0].OK {
		t.Errorf("OnPlacement calls %+v, want one ok", *seen)
	}
	if p := a.m.Status().Groups[0].Placement; p == nil || !p.OK {
		t.Errorf("status placement %+v", p)
	}
	check(t, a)
	if len(*seen) != 1 {
		t.Errorf("OnPlacement called again for the same verdict: %d calls", len(*seen))
	}
}

// TestPlacementFindings: silence on the segment, no address of the
// peer in the subnet, none of our own: each a finding, metric 0.
func TestPlacementFindings(t *testing.T) {
	_, a, _, seen := placementPair(t, false, nil)
	info := check(t, a)
	if info.OK || len(info.Findings) != 1 || !strings.Contains(info.Findings[0], "does not answer ARP on eth0") {
		t.Errorf("silent peer: %+v", info)
	}
	if v := testutil.ToFloat64(a.m.met.placement.WithLabelValues("sip")); v != 0 {
		t.Errorf("sipedge_vip_placement_ok %v, want 0", v)
	}
	if len(*seen) != 1 || (*seen)[0].OK {
		t.Errorf("OnPlacement %+v, want one failure", *seen)
	}
	other := netip.MustParsePrefix("198.51.100.10/24")
	_, a, _, _ = placementPair(t, true, func(ga, gb *GroupOptions) { ga.Address, gb.Address = other, other })
	info = check(t, a)
	got := strings.Join(info.Findings, "\n")
	if info.OK || !strings.Contains(got, "no address of its own in the VIP's subnet 198.51.100.0/24") || !strings.Contains(got, "the peer has no known address in the VIP's subnet") {
		t.Errorf("VIP outside both boxes' subnets: %+v", info)
	}
	// A /32 VIP: the segment is that of the box's own addresses.
	host := netip.MustParsePrefix("192.0.2.10/32")
	_, a, _, _ = placementPair(t, true, func(ga, gb *GroupOptions) { ga.Address, gb.Address = host, host })
	if info = check(t, a); !info.OK || info.PeerAddress != "192.0.2.12" {
		t.Errorf("/32 VIP: %+v, want the peer's address in this box's subnet probed", info)
	}
	// An address given for the peer is probed instead.
	_, a, _, _ = placementPair(t, false, func(ga, gb *GroupOptions) {
		ga.Address, gb.Address = other, other
		ga.PeerAddress = netip.MustParseAddr("198.51.100.12")
	})
	a.arp.Answer("eth0", netip.MustParseAddr("198.51.100.12"), macB)
	if info = check(t, a); info.PeerAddress != "198.51.100.12" || info.PeerMAC != macB.String() {
		t.Errorf("peer_address not probed: %+v", info)
	}
}

// TestPlacementGARP: when the peer takes the VIP, its gratuitous ARP
// must be heard here within the grace; a takeover this box did not see
// (the peer held it at our start) is not judged.
func TestPlacementGARP(t *testing.T) {
	for _, heard := range []bool{true, false} {
		s, a, b, _ := placementPair(t, true, nil)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		b.m.watchGARPs(ctx, b.arp)
		for i := 0; i < 5000 && b.arp.Watchers("eth0", testVIP.Addr()) == 0; i++ {
			time.Sleep(time.Millisecond)
		}
		b.arp.Answer("eth0", a.addr.Addr(), net.HardwareAddr{2, 0, 0, 0, 0, 0x11})
		if info := check(t, b); !info.OK {
			t.Fatalf("B at start, A holding (not seen taking it): %+v", info)
		}
		s.kill(a, false)
		s.run(time.Second)
		s.wantHolders("edge-b")
		s.boot(a)
		if _, ok := s.until(3*time.Second, func() bool { return a.state("sip") == StateMaster }); !ok {
			t.Fatal("no failback")
		}
		if heard {
			b.arp.Hear("eth0", testVIP.Addr(), net.HardwareAddr{2, 0, 0, 0, 0, 0x11})
		}
		s.run(placementGARPGrace)
		info := check(t, b)
		if heard != info.OK {
			t.Errorf("GARP heard %v: placement %+v", heard, info)
		}
		if !heard && !strings.Contains(strings.Join(info.Findings, ""), "its gratuitous ARP was not heard on eth0") {
			t.Errorf("findings %q", info.Findings)
		}
	}
}
