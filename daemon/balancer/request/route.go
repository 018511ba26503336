package request

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Where a request goes (RFC 3261 16.4, 16.6 step 6, 16.12): our own
// Route entries stripped from the top, then the next Route or the
// Request-URI; IP addresses only (a name from the wire is never looked
// up on the packet path), IPv4 or IPv6. The raw backing found its
// Route lines while scanning (scanRoute) and cuts ours while
// forwarding; the parsed one skips them here and removes them in tidy.

// HopKind says what NextHop found.
type HopKind uint8

const (
	HopAddr    HopKind = iota // an address: Hop.Transport, Hop.Addr
	HopOurs                   // the Request-URI is ours and no Route is left: the dialog's Core
	HopName                   // a host name (Hop.Host), never resolved here
	HopDecline                // raw backing: the full path must decide (a transport other than UDP, a form it does not read)
)

// Hop is a request's next hop.
type Hop struct {
	Kind      HopKind
	Transport string // "udp", "tcp"
	Addr      netip.AddrPort
	Host      string // HopName: the name
	Routed    bool   // from a Route entry, not the Request-URI
}

// NextHop is where the request goes.
func (r *Request) NextHop() Hop {
	if r.req != nil {
		return r.parsedNextHop()
	}
	target, routed := r.raw.ruri, r.raw.next != nil
	if routed {
		target = r.raw.next
	}
	tp, dst, ok := RouteTarget(target)
	if !ok || tp != "udp" {
		return Hop{Kind: HopDecline}
	}
	if !routed && r.cfg.local(dst) {
		return Hop{Kind: HopOurs}
	}
	return Hop{Kind: HopAddr, Transport: tp, Addr: dst, Routed: routed}
}

func (r *Request) parsedNextHop() Hop {
	u, routed := &r.req.Recipient, false
	if route := r.nextRoute(); route != nil {
		u, routed = &route.Address, true
	}
	if !routed && r.LocalURI(u) {
		return Hop{Kind: HopOurs}
	}
	tp, dst, err := Resolve(u)
	if err != nil {
		return Hop{Kind: HopName, Host: u.Host, Routed: routed}
	}
	return Hop{Kind: HopAddr, Transport: tp, Addr: dst, Routed: routed}
}

// nextRoute is the parsed request's first Route entry not ours (nil:
// none). Our parsers parse every Route: a scan finds it, where sipgo's
// Route() allocates a header to try a lazy parse whenever there is none.
func (r *Request) nextRoute() *sip.RouteHeader {
	for _, h := range r.req.Headers() {
		if rt, ok := h.(*sip.RouteHeader); ok {
			if !r.LocalURI(&rt.Address) {
				return rt
			}
		}
	}
	return nil
}

// Routed reports whether a Route entry not ours is left: the request is
// pre-routed or in a dialog's route set.
func (r *Request) Routed() bool {
	if r.req != nil {
		return r.nextRoute() != nil
	}
	return r.raw.next != nil
}

// AddressedToUs reports whether the Request-URI names one of our
// listeners, and whether it has a user part.
func (r *Request) AddressedToUs() (us, user bool) {
	if r.req != nil {
		return r.LocalURI(&r.req.Recipient), r.req.Recipient.User != ""
	}
	_, a, ok := RouteTarget(r.raw.ruri)
	return ok && r.cfg.local(a), bytes.IndexByte(r.raw.ruri, '@') >= 0
}

// stripOwnRoutes removes the Route entries naming this balancer from the
// top of a parsed request (loose routing, RFC 3261 16.4). The raw
// backing leaves out the lines scanRoute listed while forwarding.
func (r *Request) stripOwnRoutes() {
	for {
		var top *sip.RouteHeader
		for _, h := range r.req.Headers() {
			if rt, ok := h.(*sip.RouteHeader); ok {
				top = rt
				break
			}
		}
		if top == nil || !r.LocalURI(&top.Address) {
			return
		}
		r.req.RemoveHeader("Route")
	}
}

// LocalURI reports whether a parsed URI names one of our listeners
// (port 0: 5060); host names are never ours.
func (r *Request) LocalURI(u *sip.Uri) bool { return LocalURI(r.cfg, u) }

// LocalURI reports whether u names one of cfg's listeners: an IP
// literal (IPv6 in brackets, as sipgo keeps it in Uri.Host).
func LocalURI(cfg *Config, u *sip.Uri) bool {
	ip, ok := uriAddr(u.Host)
	if !ok {
		return false
	}
	port := u.Port
	if port == 0 {
		port = 5060
	}
	return cfg.local(netip.AddrPortFrom(ip, uint16(port)))
}

// uriAddr reads a URI's host as an IP address: sipgo keeps an IPv6
// reference's brackets in Uri.Host ("[::1]"), a Via's host without.
func uriAddr(host string) (netip.Addr, bool) {
	if len(host) > 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
		if !strings.Contains(host, ":") {
			return netip.Addr{}, false // [IPv4]
		}
	} else if strings.Contains(host, ":") {
		return netip.Addr{}, false // an IPv6 address needs its brackets in a URI
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}, false
	}
	return ip.Unmap(), true
}

// Resolve turns a SIP URI into a transport and an address. Only an IP
// literal (IPv4, or IPv6 in brackets): a host name from the wire is
// never looked up on the packet path (a lookup would hold the worker,
// and every call behind it, for as long as the name's server takes).
func Resolve(u *sip.Uri) (string, netip.AddrPort, error) {
	tp := "udp"
	if t, ok := u.UriParams.Get("transport"); ok {
		switch {
		case strings.EqualFold(t, "tcp"):
			tp = "tcp"
		case strings.EqualFold(t, "tls"):
			tp = "tls"
		}
	}
	if u.Scheme == "sips" {
		tp = "tls" // RFC 3261 26.2.2: every hop over TLS, never anything else
	}
	port := u.Port
	if port == 0 {
		port = 5060
		if tp == "tls" {
			port = 5061
		}
	}
	ip, ok := uriAddr(u.Host)
	if !ok {
		return "", netip.AddrPort{}, fmt.Errorf("next hop %q: not an IP address (no DNS on the packet path)", u.Host)
	}
	return tp, netip.AddrPortFrom(ip, uint16(port)), nil
}
