package failover

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sipedge/sipedge/hal"
)

// VIP placement check: can the VIP move between the two boxes? A VIP
// moves by gratuitous ARP, so both boxes must sit on the VIP's layer-2
// segment: the seed's most common failure is a pair split across two
// sites or VLANs, which works until the first takeover. For each IPv4
// group, at start, after every change of holder and every
// PlacementEvery, the box checks:
//
//   - it has an address of its own in the VIP's subnet on the VIP's
//     interface;
//   - the peer has one: GroupOptions.PeerAddress, else the peer's
//     heartbeat address when it lies in the subnet (a peer with no known
//     address there is itself a finding);
//   - the peer answers an ARP probe for that address on the interface
//     (RFC 5227: sender address 0.0.0.0, so nothing is announced and no
//     cache learns anything; the VIP is never named);
//   - when the peer took the VIP, its gratuitous ARP reached this box
//     (heard within placementGARPGrace of the takeover).
//
// A failed check is a warning (log), a metric
// (sipedge_vip_placement_ok{group}), and Options.OnPlacement, which the
// daemon turns into an event and an alarm; Status and `ctl vip` show the
// findings; CheckPlacement (`ctl vip check`) runs it on demand.

// MethodVIPCheck is the control method that runs the placement check now.
const MethodVIPCheck = "vip.check"

// Placement check timing.
const (
	DefaultPlacementEvery = time.Minute
	placementProbeFor     = 2 * time.Second // ARP probes wait this long for an answer
	placementGARPGrace    = 3 * time.Second // the peer's GARP must come within this of its takeover
)

// PlacementInfo is the last placement check of a group.
type PlacementInfo struct {
	Checked     time.Time `json:"checked"`
	OK          bool      `json:"ok"`
	Findings    []string  `json:"findings,omitempty"`
	PeerAddress string    `json:"peer_address,omitempty"` // probed on the VIP's segment
	PeerMAC     string    `json:"peer_mac,omitempty"`     // who answered
	// PeerGARP is when the peer's gratuitous ARP for the VIP was last
	// heard here.
	PeerGARP *time.Time `json:"peer_garp,omitempty"`
}

// placement is a group's placement state (guarded by the Manager's mu).
type placement struct {
	last      *PlacementInfo
	peerHolds bool
	peerSeen  bool // a live peer was heard not holding the VIP
	// peerTookAt: when this box saw the peer take the VIP (zero: it did
	// not see it happen, e.g. the peer held it when this box started).
	peerTookAt time.Time
	garpAt     time.Time // the peer's last gratuitous ARP heard here
	garpMAC    net.HardwareAddr
	due        time.Time // next check; zero: at the next periodic one
}

// notePeerHolder records when a live peer starts to hold the VIP, and
// asks for a check once its announcements had time to arrive.
func (m *Manager) notePeerHolder(g *group, alive []*peerGroup, now time.Time) {
	holds := slices.ContainsFunc(alive, func(p *peerGroup) bool { return p.status.State == StateMaster })
	switch {
	case holds && !g.place.peerHolds && g.place.peerSeen:
		g.place.peerTookAt = now
		g.place.due = now.Add(placementGARPGrace)
	case !holds:
		g.place.peerTookAt = time.Time{}
		g.place.peerSeen = g.place.peerSeen || len(alive) > 0
	}
	g.place.peerHolds = holds
}

// prober is the Network's ARP prober; nil turns the check off (a fake
// HAL without ARP).
func (m *Manager) prober() hal.ARPProber {
	p, _ := m.net.(hal.ARPProber)
	return p
}

// runPlacement starts the gratuitous-ARP watchers and the periodic
// check until ctx ends.
func (m *Manager) runPlacement(ctx context.Context) {
	pr := m.prober()
	if pr == nil || m.opt.PlacementEvery < 0 {
		return
	}
	m.watchGARPs(ctx, pr)
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		next := time.Now() // at start
		for {
			now := m.opt.Clock.Now()
			m.mu.Lock()
			due := !time.Now().Before(next)
			for _, g := range m.groups {
				if !g.place.due.IsZero() && !now.Before(g.place.due) {
					due, g.place.due = true, time.Time{}
				}
			}
			m.mu.Unlock()
			if due {
				m.CheckPlacement(ctx)
				next = time.Now().Add(m.opt.PlacementEvery)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
}

// watchGARPs records, per IPv4 group, when the peer's gratuitous ARP
// for the VIP is heard, until ctx ends.
func (m *Manager) watchGARPs(ctx context.Context, pr hal.ARPProber) {
	for _, g := range m.groups {
		if !g.opt.Address.Addr().Is4() {
			continue
		}
		go func() {
			err := pr.WatchGARP(ctx, g.opt.Interface, g.opt.Address.Addr(), func(mac net.HardwareAddr) {
				m.mu.Lock()
				g.place.garpAt, g.place.garpMAC = m.opt.Clock.Now(), mac
				m.mu.Unlock()
			})
			if err != nil && ctx.Err() == nil {
				m.log.Warn("placement check: cannot hear gratuitous ARP", "group", g.opt.Name, "err", err)
			}
		}()
	}
}

// CheckPlacement runs the placement check of every group now (the
// groups in parallel, each bounded by placementProbeFor) and returns
// the results by group name.
func (m *Manager) CheckPlacement(ctx context.Context) map[string]PlacementInfo {
	out := map[string]PlacementInfo{}
	pr := m.prober()
	if pr == nil {
		return out
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, g := range m.groups {
		wg.Go(func() {
			info := m.checkPlacement(ctx, pr, g)
			mu.Lock()
			out[g.opt.Name] = info
			mu.Unlock()
			m.recordPlacement(g, info)
		})
	}
	wg.Wait()
	return out
}

func (m *Manager) checkPlacement(ctx context.Context, pr hal.ARPProber, g *group) PlacementInfo {
	vip, ifname := g.opt.Address, g.opt.Interface
	subnet := vip.Masked()
	info := PlacementInfo{}
	if !vip.Addr().Is4() {
		info.OK, info.Checked = true, m.opt.Clock.Now()
		info.Findings = []string{"IPv6 VIP: placement not checked (ARP is IPv4)"}
		return info
	}
	find := func(format string, args ...any) { info.Findings = append(info.Findings, fmt.Sprintf(format, args...)) }
	if m.links != nil { // loopback has a hardware address of zeros
		if st, err := m.links.Link(ifname); err == nil && (len(st.HardwareAddr) != 6 || !slices.ContainsFunc(st.HardwareAddr, func(b byte) bool { return b != 0 })) {
			info.OK, info.Checked = true, m.opt.Clock.Now()
			find("%s is not an Ethernet interface: placement not checked", ifname)
			return info
		}
	}

	// The VIP's segment: its subnet; for a /31 or /32 VIP, the subnets of
	// this box's own addresses on the interface.
	own, err := m.net.Addresses(ifname)
	var subnets []netip.Prefix
	if vip.Bits() < 31 {
		subnets = []netip.Prefix{subnet}
	} else {
		for _, p := range own {
			if p.Addr() != vip.Addr() && p.Addr().Is4() {
				subnets = append(subnets, p.Masked())
			}
		}
	}
	inSegment := func(a netip.Addr) bool {
		return slices.ContainsFunc(subnets, func(p netip.Prefix) bool { return p.Contains(a) })
	}
	if err != nil {
		find("cannot read the addresses of %s: %v", ifname, err)
	} else if !slices.ContainsFunc(own, func(p netip.Prefix) bool { return p.Addr() != vip.Addr() && inSegment(p.Addr()) }) {
		find("this box has no address of its own in the VIP's subnet %s on %s", subnet, ifname)
	}

	peer := g.opt.PeerAddress
	if !peer.IsValid() {
		for a := range m.sources {
			if inSegment(a) {
				peer = a
			}
		}
	}
	if !peer.IsValid() {
		var hb []string
		for a := range m.sources {
			hb = append(hb, a.String())
		}
		slices.Sort(hb)
		find("the peer has no known address in the VIP's subnet %s (its heartbeat address %s is outside it; give vips[].peer_address if it has one): it is not on the VIP's segment", subnet, strings.Join(hb, ", "))
	} else {
		info.PeerAddress = peer.String()
		pctx, cancel := context.WithTimeout(ctx, placementProbeFor)
		mac, err := pr.ProbeARP(pctx, ifname, peer)
		cancel()
		m.mu.Lock()
		heard := len(g.alive(m.opt.Clock.Now())) > 0
		m.mu.Unlock()
		switch {
		case err != nil && heard:
			find("the peer %s does not answer ARP on %s (%v) though its heartbeats arrive: it is not on this box's layer-2 segment, and the VIP cannot move between the two", peer, ifname, err)
		case err != nil:
			find("the peer %s does not answer ARP on %s (%v) and is not heard: it is down, or not on this box's layer-2 segment", peer, ifname, err)
		default:
			info.PeerMAC = mac.String()
		}
	}

	now := m.opt.Clock.Now()
	m.mu.Lock()
	pl := g.place
	m.mu.Unlock()
	if !pl.garpAt.IsZero() {
		t := pl.garpAt
		info.PeerGARP = &t
	}
	if pl.peerHolds && !pl.peerTookAt.IsZero() && now.Sub(pl.peerTookAt) >= placementGARPGrace && pl.garpAt.Before(pl.peerTookAt.Add(-placementGARPGrace)) {
		find("the peer took the VIP at %s but its gratuitous ARP was not heard on %s: clients on this box's segment would not follow it", pl.peerTookAt.Format(time.TimeOnly), ifname)
	}
	info.Checked, info.OK = now, len(info.Findings) == 0
	return info
}

// recordPlacement keeps info, and on a change of verdict or findings
// logs it, sets the metric and calls OnPlacement.
func (m *Manager) recordPlacement(g *group, info PlacementInfo) {
	m.mu.Lock()
	prev := g.place.last
	g.place.last = &info
	m.mu.Unlock()
	m.met.setPlacement(g.opt.Name, info.OK)
	if prev != nil && prev.OK == info.OK && slices.Equal(prev.Findings, info.Findings) {
		return
	}
	if info.OK {
		m.log.Info("VIP placement check passes", "group", g.opt.Name, "peer", info.PeerAddress, "peer_mac", info.PeerMAC)
	} else {
		m.log.Warn("VIP placement check FAILS: the VIP may not be able to move to the peer", "group", g.opt.Name, "findings", strings.Join(info.Findings, "; "))
	}
	if m.opt.OnPlacement != nil {
		m.opt.OnPlacement(g.opt.Name, info)
	}
}

// placementInfo is the group's last check for Status (nil: none yet).
func (g *group) placementInfo() *PlacementInfo {
	if g.place.last == nil {
		return nil
	}
	c := *g.place.last
	return &c
}
