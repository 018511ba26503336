package balancer

import (
	"fmt"
	"net/netip"
)

// The Core-facing sockets. Each address the balancer listens on over
// UDP has a twin socket on Options.CorePort that the requests toward
// the Cores leave from, OPTIONS probes included. Our Via names it, so
// the Cores' responses and the replies to the probes come back to a
// socket of their own: under a flood of new INVITEs on the public
// socket they are neither dropped by the kernel (the public receive
// buffer full) nor queued behind the flood (their messages go to the
// front of their worker's queue), and the balancer's own overload is
// never read as a dead Core. A twin takes datagrams only from the Cores
// and trusted sources; the rest is dropped and counted.
//
// The Cores' in-dialog requests still come to the public listener (our
// Record-Route names it) and our responses leave from it: a twin only
// carries the Cores' side of transactions the balancer started.

// Options.CorePort's special values.
const (
	// CorePortOff: no twin sockets, requests toward the Cores leave from
	// the listener, as before the twins existed.
	CorePortOff = -1
	// CorePortAny: twins on a port the kernel chooses at Start. Not for
	// a pair: after a takeover a Core that answers a call's requests
	// where its INVITE came from (SIPp does) would find no socket there.
	CorePortAny = -2
)

// DefaultCorePort is the twins' port when Options.CorePort is 0: the
// first UDP listen port plus 10 (5070 for 5060), or the next one up that
// no UDP listen address uses. Both boxes of a pair, with the same
// listen addresses, get the same port, so that answers to the box that
// held the VIP reach the one that holds it now. 0 without UDP.
func DefaultCorePort(listen []string) int {
	used := map[int]bool{}
	first := 0
	for _, l := range listen {
		la, err := parseListen(l)
		if err != nil || la.transport != "udp" {
			continue
		}
		used[int(la.addr.Port())] = true
		if first == 0 {
			first = int(la.addr.Port())
		}
	}
	if first == 0 {
		return 0
	}
	p := first + 10
	for used[p] || p > 65535 {
		if p++; p > 65535 {
			p = 1024
		}
	}
	return p
}

// newCoreTwins gives each UDP listener its twin on port (0: one the
// kernel chooses at Start); listeners on the same IP share one.
func (b *Balancer) newCoreTwins(port int) {
	byIP := map[netip.Addr]*listener{}
	for _, l := range b.listeners {
		if l.transport != "udp" {
			continue
		}
		t := byIP[l.addr.Addr()]
		if t == nil {
			t = newListener(listenAddr{transport: "udp", addr: netip.AddrPortFrom(l.addr.Addr(), uint16(port))})
			t.coreSide = true
			byIP[l.addr.Addr()] = t
			b.twins = append(b.twins, t)
		}
		l.twin = t
	}
}

// coreOut is the listener a request toward dst over tp leaves from when
// dst is a Core: the twin of out, or out itself when there is none.
func (b *Balancer) coreOut(out *listener, tp string, dst netip.AddrPort, c *Core) *listener {
	if tp != "udp" || out == nil || out.twin == nil {
		return out
	}
	if c == nil && b.pool.byAddr(dst) == nil {
		return out
	}
	return out.twin
}

// udpFrom is the UDP listener a datagram to dst leaves from: the first
// of dst's family, or the loopback one toward loopback (from the VIP,
// the source would be an address the box may not hold, and a connected
// peer on loopback would not take it). With twin, its Core-facing twin.
func (b *Balancer) udpFrom(dst netip.AddrPort, twin bool) (*listener, error) {
	l := b.outFor("udp", dst.Addr()) // of dst's family (dual stack)
	if b.udpLoop != nil && dst.Addr().IsLoopback() && b.udpLoop.addr.Addr().Is4() == dst.Addr().Is4() {
		l = b.udpLoop
	}
	if l == nil {
		return nil, fmt.Errorf("no udp listener to send to %s", dst)
	}
	if twin && l.twin != nil {
		l = l.twin
	}
	return l, nil
}

// admitOnTwin reports whether a datagram that came in on a twin may be
// handled: only the Cores and trusted sources speak to it.
func (b *Balancer) admitOnTwin(in inbound) bool {
	if in.trusted {
		return true
	}
	b.stats.TwinRefused.Add(1)
	return false
}

// CoreAddrs returns the Core-facing twin sockets' addresses
// ("udp:IP:port"), empty with Options.CorePort CorePortOff.
func (b *Balancer) CoreAddrs() []string {
	var out []string
	for _, t := range b.twins {
		out = append(out, "udp:"+t.addr.String())
	}
	return out
}
