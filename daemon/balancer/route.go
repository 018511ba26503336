package balancer

import (
	"errors"
	"fmt"
	"github.com/sipedge/sipedge/daemon/balancer/request"
	"net/netip"

	"github.com/emiago/sipgo/sip"
)

func (b *Balancer) isLocalURI(u *sip.Uri) bool { return request.LocalURI(b.reqCfg, u) }

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
	for _, l := range b.twins {
		if l.addr == a {
			return true
		}
	}
	return false
}

// responseInDialog reports whether a response names a dialog the
// balancer knows (Call-ID and both tags).
func (b *Balancer) responseInDialog(res *sip.Response) bool {
	to := res.To()
	if to == nil {
		return false
	}
	toTag, _ := to.Params.Get("tag")
	return b.dialogs.match([]byte(*res.CallID()), []byte(headerTag(request.FromHeader(res))), []byte(toTag)).side != sideNone
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
	if t, ok := request.FindParam([]byte(h.Value()), "tag"); ok {
		return string(t)
	}
	return ""
}

// requestHop is where a pre-routed or in-dialog request goes: its next
// Route (ours gone), else its Request-URI, or, addressed to us with no
// route, its dialog's Core. IP addresses only: a name (host) from the
// wire is never looked up on the packet path.
func (b *Balancer) requestHop(rq *request.Request, callID string) (tp string, dst netip.AddrPort, host string, err error) {
	h := rq.NextHop()
	switch h.Kind {
	case request.HopAddr:
		return h.Transport, h.Addr, "", nil
	case request.HopOurs:
		if c := b.dialogs.coreOf(callID); c != nil {
			return c.transport, c.addr, "", nil
		}
		return "", netip.AddrPort{}, "", errNoRoute
	case request.HopName:
		return "", netip.AddrPort{}, h.Host, fmt.Errorf("next hop %q: not an IP address (no DNS on the packet path)", h.Host)
	}
	return "", netip.AddrPort{}, "", errNoRoute
}

var errNoRoute = errors.New("no route")

// outFor is the listener requests over transport tp toward an address
// of dst's family leave from: one of that family when there is one.
func (b *Balancer) outFor(tp string, dst netip.Addr) *listener {
	first := b.udpOut
	switch tp {
	case "tcp":
		first = b.tcpOut
	case "tls":
		first = b.tlsOut
	}
	if first == nil || !dst.IsValid() || first.addr.Addr().Is4() == dst.Is4() {
		return first
	}
	for _, l := range b.listeners {
		if l.transport == tp && l.addr.Addr().Is4() == dst.Is4() {
			return l
		}
	}
	return first
}
