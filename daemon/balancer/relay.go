package balancer

import (
	"bytes"
	"fmt"
	"github.com/sipedge/sipedge/daemon/balancer/request"
	"net/netip"
	"strings"
)

// Routing policy (Options.Relay, security.relay): who may make the
// balancer send where. A request from a source that is neither a Core
// nor trusted (the Screen's Verdict.Trusted) is forwarded only when it
// starts a dialog or transaction toward the Core pool (no Route, or only
// ours: the Core is the balancer's choice, never the sender's), or when
// it belongs to a dialog the balancer knows by Call-ID and both tags,
// from the caller's side, and goes to that dialog's recorded next hop.
// Everything else is answered (403, 481) or, for an ACK, dropped, and
// counted by reason (Stats.Refused). Cores and trusted sources keep RFC
// 3261 loose routing. RelayOpen lets every source route freely: a lab's
// setting, flagged as unsafe by the daemon.
const (
	RelayDialogs = "dialogs"
	RelayOpen    = "open"
)

// Why a message from an untrusted source was not forwarded
// (Stats.Refused, sipedge_sip_relay_refused_total{reason}).
const (
	refusedRoute     = iota // a new request routed elsewhere than the Core pool: 403
	refusedDialog           // in-dialog, no dialog known by Call-ID and both tags: 481
	refusedDirection        // the callee's side of a dialog, from an untrusted source: 403
	refusedNextHop          // in a known dialog, toward another next hop than its own: 403
	refusedAck              // an ACK outside a known dialog or its next hop: dropped
	refusedResponse         // a response along no transaction of ours, nor justified: dropped
)

var refusedReasons = [...]string{"route", "unknown_dialog", "direction", "next_hop", "ack", "response"}

// maxNextHop bounds a dialog's recorded next hop (a URI from a Core's
// 2xx); longer ones are not kept, and the dialog's Core is the next hop.
const maxNextHop = 256

// Which side of a dialog a request comes from, by its tags.
type dialogSide uint8

const (
	sideNone   dialogSide = iota // not this dialog
	sideCaller                   // From: the caller's tag, To: the callee's
	sideCallee                   // the other way round
)

// side tells which side of d a request with these tags comes from. A
// dialog still early knows only the caller's tag. One mirrored from a
// peer on the previous release knows no tag: its Call-ID is all there
// is to match, from the caller's side.
func (d *dialog) side(fromTag, toTag []byte) dialogSide {
	switch {
	case d.callerTag == "" && d.calleeTag == "":
		return sideCaller
	case string(fromTag) == d.callerTag && (!d.confirmed || d.calleeTag == "" || string(toTag) == d.calleeTag):
		return sideCaller
	case d.confirmed && string(fromTag) == d.calleeTag && string(toTag) == d.callerTag:
		return sideCallee
	}
	return sideNone
}

// nextHop is where the caller's side of d goes: the recorded next hop,
// or the dialog's Core (early, a host name, a record without one).
func (d *dialog) nextHop() (string, netip.AddrPort) {
	if d.confirmed && d.hop.addr.IsValid() {
		return d.hop.tp, d.hop.addr
	}
	return d.core.transport, d.core.addr
}

// dialogMatch is what the dialog table says of an in-dialog request.
type dialogMatch struct {
	side dialogSide
	tp   string
	dst  netip.AddrPort // the caller side's next hop
	uri  string         // the recorded next hop as a URI ("": the Core)
	core *Core
}

// match looks up the dialog a request names (Call-ID, From tag, To tag).
func (t *dialogTable) match(callID, fromTag, toTag []byte) (m dialogMatch) {
	viewBytes(t.m, callID, func(d *dialog, ok bool) {
		if !ok {
			return
		}
		m.side, m.core, m.uri = d.side(fromTag, toTag), d.core, d.hop.nextHop
		m.tp, m.dst = d.nextHop()
	})
	return m
}

// trusted decides a message's trust from the Screen's verdict: the
// Screen knows the trusted networks; the Cores are always trusted, and
// without a Screen so is the box itself (loopback).
func (b *Balancer) trusted(v Verdict, src netip.AddrPort) bool {
	if v.Trusted || b.relayOpen.Load() {
		return true
	}
	a := src.Addr().Unmap()
	if b.opt.Screen == nil && a.IsLoopback() && (a.Is6() || a == netip.AddrFrom4([4]byte{127, 0, 0, 1})) {
		return true
	}
	return b.pool.hasAddr(a)
}

// SetRelay changes the routing policy (a reload): RelayDialogs or
// RelayOpen.
func (b *Balancer) SetRelay(relay string) error {
	if relay != RelayDialogs && relay != RelayOpen {
		return fmt.Errorf("relay %q: want %s or %s", relay, RelayDialogs, RelayOpen)
	}
	b.relayOpen.Store(relay == RelayOpen)
	return nil
}

// refuse counts a refusal by reason.
func (b *Balancer) refuse(reason int) { b.stats.Refused[reason].Add(1) }

// untrustedInDialog decides an in-dialog request from an untrusted
// source: forwarded only from the caller's side of a known dialog to its
// next hop. tp and dst are where the request itself would go; host is
// its next hop's host when that is a name (dst then invalid): the name
// the dialog recorded (a Core's Contact) stands for the dialog's hop,
// looked up nowhere. It returns the match (m.tp, m.dst: where to send)
// and 0, else the code to answer (481, 403), the refusal counted.
func (b *Balancer) untrustedInDialog(callID, fromTag, toTag []byte, tp string, dst netip.AddrPort, host string) (m dialogMatch, code int, reason string) {
	m = b.dialogs.match(callID, fromTag, toTag)
	switch {
	case m.core == nil || m.side == sideNone:
		b.refuse(refusedDialog)
		return m, 481, "Call/Transaction Does Not Exist"
	case m.side == sideCallee:
		b.refuse(refusedDirection)
		return m, 403, "Forbidden"
	case !m.allows(tp, dst, host):
		b.refuse(refusedNextHop)
		return m, 403, "Forbidden"
	}
	return m, 0, ""
}

// allows reports whether the dialog m lets a request from its caller's
// side go to tp, dst: its recorded next hop, or its Core (the
// balancer's choice, as for a request addressed to the balancer with no
// Route), or host (a name: dst invalid) when that is the name the
// dialog recorded.
func (m dialogMatch) allows(tp string, dst netip.AddrPort, host string) bool {
	if m.core == nil || m.side != sideCaller {
		return false
	}
	if host != "" && !dst.IsValid() {
		return strings.EqualFold(uriHost(m.uri), host)
	}
	return m.dst == dst && m.tp == tp || m.core.addr == dst && m.core.transport == tp
}

// uriHost is the host of a SIP URI ("sip:user@host:port;params").
func uriHost(u string) string {
	_, u, _ = strings.Cut(u, ":")
	if i := strings.LastIndexByte(u, '@'); i >= 0 {
		u = u[i+1:]
	}
	if i := strings.IndexAny(u, ":;?>"); i >= 0 {
		u = u[:i]
	}
	return u
}

// targetOf reads what a 2xx to an INVITE tells of its dialog: the To
// tag, and the caller's next hop beyond the balancer, the Record-Route
// entry just above our own (a proxy between us and the callee), else
// the Contact (the remote target). p is the response as received or as
// forwarded (our Via gone).
func (b *Balancer) targetOf(p []byte) dialogTarget {
	var t dialogTarget
	var prev, contact, rr, tag []byte
	seenOurs := false
	i := bytes.IndexByte(p, '\n')
	if i < 0 {
		return t
	}
	for i++; i < len(p); {
		if !targetLine[p[i]] {
			// Not To, Contact or Record-Route (nor the blank line): a 2xx
			// has a dozen headers, three of them of interest here.
			j := bytes.IndexByte(p[i:], '\n')
			if j < 0 {
				break
			}
			i += j + 1
			continue
		}
		h, last, ok := request.NextHeader(p, i)
		if !ok || last {
			break
		}
		i = h.Next
		if h.Colon <= 0 {
			continue
		}
		switch name := h.Name; {
		case request.HeaderIs(name, "To", 't'):
			tag, _ = request.FindParam(h.Value, "tag")
		case contact == nil && request.HeaderIs(name, "Contact", 'm'):
			contact = uriOf(h.Value)
		case !seenOurs && request.HeaderIs(name, "Record-Route", 0):
			for v := h.Value; len(v) > 0 && !seenOurs; {
				var e []byte
				e, v = nextEntry(v)
				if _, ap, ok := request.RouteTarget(e); ok && b.isLocal(ap) {
					seenOurs, rr = true, prev
				} else {
					prev = e
				}
			}
		}
	}
	hop := contact
	if rr != nil {
		hop, t.routed = uriOf(rr), true
	}
	if len(hop) > maxNextHop {
		hop = nil
	}
	// One string for both (one allocation per call).
	var arr [320]byte
	both := string(append(append(arr[:0], tag...), hop...))
	t.calleeTag, t.nextHop = both[:len(tag)], both[len(tag):]
	if tp, ap, ok := request.RouteTarget(hop); ok && (tp == "udp" || tp == "tcp" || tp == "tls") {
		t.tp, t.addr = tp, ap
	}
	return t
}

// targetLine marks the first bytes of the lines targetOf reads: To (t),
// Contact (m), Record-Route, and the blank line that ends the headers.
var targetLine = [256]bool{'T': true, 't': true, 'C': true, 'c': true, 'M': true, 'm': true, 'R': true, 'r': true, '\r': true, '\n': true}

// nextEntry cuts the first entry of a Route or Record-Route value (up
// to a comma outside <> and quotes) from the rest.
func nextEntry(v []byte) (e, rest []byte) {
	depth, quoted := 0, false
	for i, c := range v {
		switch {
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '<':
			depth++
		case c == '>':
			depth--
		case c == ',' && depth == 0:
			return bytes.TrimSpace(v[:i]), v[i+1:]
		}
	}
	return bytes.TrimSpace(v), nil
}

// uriOf is the URI of a name-addr or addr-spec header value: between
// '<' and '>', else up to the first ';' or ','.
func uriOf(v []byte) []byte {
	if i := bytes.IndexByte(v, '<'); i >= 0 {
		if j := bytes.IndexByte(v[i:], '>'); j > 0 {
			return bytes.TrimSpace(v[i+1 : i+j])
		}
		return nil
	}
	if j := bytes.IndexAny(v, ";,"); j >= 0 {
		v = v[:j]
	}
	return bytes.TrimSpace(v)
}
