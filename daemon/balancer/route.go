package balancer

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Where requests go (RFC 3261 16.4, 16.6 step 6, 16.12): our own Route
// entries stripped, then the next Route or the Request-URI, IP
// addresses only (no name from the wire is looked up on the packet
// path). The routing policy (relay.go) decides whether a source may go
// there at all.

// nextHop is where a pre-routed or in-dialog request goes: its top
// Route (our own gone), else its Request-URI, or, addressed to us with
// no route, its dialog's Core. IP addresses only: no name from the wire
// is looked up on the packet path.
func (b *Balancer) nextHop(req *sip.Request, route *sip.RouteHeader, callID string) (string, netip.AddrPort, error) {
	switch {
	case route != nil:
		return resolve(&route.Address)
	case b.isLocalURI(&req.Recipient):
		if c := b.dialogs.coreOf(callID); c != nil {
			return c.transport, c.addr, nil
		}
		return "", netip.AddrPort{}, fmt.Errorf("no route")
	}
	return resolve(&req.Recipient)
}

// stripOwnRoutes removes the Route entries naming this balancer from the
// top (loose routing, RFC 3261 16.4).
func (b *Balancer) stripOwnRoutes(req *sip.Request) {
	for {
		r := topRoute(req)
		if r == nil || !b.isLocalURI(&r.Address) {
			return
		}
		req.RemoveHeader("Route")
	}
}

// topRoute is the request's first Route header, nil when it has none.
// Our parsers parse every Route: a scan finds it, where sipgo's Route()
// allocates a header to try a lazy parse whenever there is none.
func topRoute(req *sip.Request) *sip.RouteHeader {
	for _, h := range req.Headers() {
		if r, ok := h.(*sip.RouteHeader); ok {
			return r
		}
	}
	return nil
}

func (b *Balancer) isLocalURI(u *sip.Uri) bool { return b.isLocalHostPort(u.Host, u.Port) }

func (b *Balancer) isLocalVia(v *sip.ViaHeader) bool { return b.isLocalHostPort(v.Host, v.Port) }

// isLocalHostPort tells whether host:port (port 0: 5060) is one of our
// listeners; host names are never ours.
func (b *Balancer) isLocalHostPort(host string, port int) bool {
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	if port == 0 {
		port = 5060
	}
	return b.isLocal(netip.AddrPortFrom(ip.Unmap(), uint16(port)))
}

func (b *Balancer) isLocal(a netip.AddrPort) bool {
	for _, l := range b.listeners {
		if l.addr == a {
			return true
		}
	}
	return false
}

// resolve turns a SIP URI into a transport and address. Only an IP
// literal: a host name from the wire is never looked up on the packet
// path (a lookup would hold the worker, and every call behind it, for
// as long as the name's server takes).
func resolve(u *sip.Uri) (string, netip.AddrPort, error) {
	tp := "udp"
	if t, ok := u.UriParams.Get("transport"); ok && strings.EqualFold(t, "tcp") {
		tp = "tcp"
	}
	port := u.Port
	if port == 0 {
		port = 5060
	}
	ip, err := netip.ParseAddr(u.Host)
	if err != nil {
		return "", netip.AddrPort{}, fmt.Errorf("next hop %q: not an IP address (no DNS on the packet path)", u.Host)
	}
	return tp, netip.AddrPortFrom(ip.Unmap(), uint16(port)), nil
}

// targetHost is the host a pre-routed or in-dialog request names as its
// next hop.
func targetHost(req *sip.Request, route *sip.RouteHeader) string {
	if route != nil {
		return route.Address.Host
	}
	return req.Recipient.Host
}

// responseInDialog reports whether a response names a dialog the
// balancer knows (Call-ID and both tags).
func (b *Balancer) responseInDialog(res *sip.Response) bool {
	to := res.To()
	if to == nil {
		return false
	}
	toTag, _ := to.Params.Get("tag")
	return b.dialogs.match([]byte(*res.CallID()), []byte(headerTag(fromHeader(res))), []byte(toTag)).side != sideNone
}

// unicast reports whether a is an address a response may be sent to:
// not unspecified, multicast or the IPv4 broadcast.
func unicast(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsMulticast() && a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// headerTag is the tag parameter of a From or To header (raw or
// parsed), "" when it has none.
func headerTag(h sip.Header) string {
	if h == nil {
		return ""
	}
	if t, ok := findParam([]byte(h.Value()), "tag"); ok {
		return string(t)
	}
	return ""
}
