package balancer

import (
	"bytes"
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// The ACK for a 2xx is end-to-end: the balancer forwards it statelessly
// along the route set (RFC 3261 16.11). It is one message in six of a
// call, and what forwarding it needs — our own Route entries stripped,
// Max-Forwards decremented, a Via with a branch derived from the
// incoming one, the next hop from the next Route or the Request-URI — is
// done here on the raw bytes, without sipgo's parse and render. Anything
// unusual (folding, TCP, a host name, a Route line mixing ours and
// others', an ACK matching a server transaction: the hop-by-hop ACK of a
// non-2xx) declines, and the full path handles it.

// fastAck forwards a 2xx ACK from the raw datagram; false when the full
// path must take it.
func (b *Balancer) fastAck(in inbound) bool {
	if in.conn != nil || !bytes.HasPrefix(in.data, []byte("ACK ")) || b.udpOut == nil {
		return false
	}
	r, ok := b.scanRequest(in)
	if !ok {
		return false
	}
	// The hop-by-hop ACK of a non-2xx final matches our server transaction.
	var kb [128]byte
	if _, ok := getBytes(b.stx, appendTxKey(kb[:0], r.branch, r.sentBy, int(r.viaPort), string(sip.INVITE))); ok {
		return false
	}
	if r.mf == 0 {
		return true // Max-Forwards exhausted: an ACK gets no answer
	}
	if r.mf < 0 {
		return false // the full path adds one
	}
	dst, hop := b.rawNextHop(&r)
	switch hop {
	case hopDecline:
		return false
	case hopNone:
		return true // nowhere to go: dropped, as the full path does
	}
	if !in.trusted {
		if m := b.dialogs.match(r.callID, r.fromTag, r.toTagV); !m.allows("udp", dst, "") {
			b.refuse(refusedAck)
			return true // an ACK gets no answer: dropped
		}
	}
	var br [48]byte
	branch := strconv.AppendUint(append(br[:0], sip.RFC3261BranchMagicCookie+"sl"...), mix64(fnv1a(fnv1a(fnvOffset64, r.branch), r.callID)), 36)
	bp := bufPool.Get().(*bytes.Buffer) // sent at once over UDP, kept nowhere
	defer bufPool.Put(bp)
	bp.Reset()
	bp.Grow(len(in.data) + 96)
	buf := appendForward(&r, bp.AvailableBuffer(), b.udpOut, branch, "")
	b.stats.Forwarded.Add(1)
	if err := b.send("udp", dst, buf, nil); err != nil {
		b.log.Debug("forward ack", "dst", dst, "err", err)
	}
	return true
}

// splitRoute splits a Route value into its entries (commas outside <>
// and quotes); false on anything it does not follow.
func splitRoute(v []byte) ([][]byte, bool) {
	var out [][]byte
	depth, start := 0, 0
	for i, c := range v {
		switch {
		case c == '"':
			return nil, false
		case c == '<':
			depth++
		case c == '>':
			depth--
		case c == ',' && depth == 0:
			out = append(out, bytes.TrimSpace(v[start:i]))
			start = i + 1
		}
	}
	out = append(out, bytes.TrimSpace(v[start:]))
	for _, e := range out {
		if len(e) == 0 {
			return nil, false
		}
	}
	return out, depth == 0
}

// routeTarget reads "<sip:[user@]IP[:port][;params]>" or a bare SIP URI
// into a transport and an address; false for a host name, sips, or
// anything else the full path should look at.
func routeTarget(e []byte) (string, netip.AddrPort, bool) {
	if len(e) > 0 && e[0] == '<' {
		c := bytes.IndexByte(e, '>')
		if c < 0 {
			return "", netip.AddrPort{}, false
		}
		e = e[1:c]
	}
	if len(e) < 4 || !strings.EqualFold(string(e[:4]), "sip:") {
		return "", netip.AddrPort{}, false
	}
	u := e[4:]
	hostEnd := bytes.IndexAny(u, ";?")
	params := []byte(nil)
	if hostEnd >= 0 {
		params = u[hostEnd:]
		u = u[:hostEnd]
	}
	if at := bytes.LastIndexByte(u, '@'); at >= 0 {
		u = u[at+1:]
	}
	if bytes.IndexByte(u, '[') >= 0 {
		return "", netip.AddrPort{}, false
	}
	host, port := u, 5060
	if h, ps, ok := bytes.Cut(u, []byte{':'}); ok {
		n, err := strconv.Atoi(string(ps))
		if err != nil || n <= 0 || n > 65535 {
			return "", netip.AddrPort{}, false
		}
		host, port = h, n
	}
	ip, ok := parseIPv4(host)
	if !ok {
		var err error
		if ip, err = netip.ParseAddr(string(host)); err != nil {
			return "", netip.AddrPort{}, false
		}
	}
	tp := "udp"
	if t := paramValue(params, "transport"); t != nil {
		if !strings.EqualFold(string(t), "udp") {
			tp = strings.ToLower(string(t))
		}
	}
	return tp, netip.AddrPortFrom(ip.Unmap(), uint16(port)), true
}

// parseIPv4 reads a dotted quad without converting it to a string (no
// allocation); false for anything else, leading zeros included, which
// netip.ParseAddr then judges.
func parseIPv4(b []byte) (netip.Addr, bool) {
	var a [4]byte
	n, v, digits := 0, 0, 0
	for i := 0; i <= len(b); i++ {
		if i == len(b) || b[i] == '.' {
			if digits == 0 || n == 4 {
				return netip.Addr{}, false
			}
			a[n] = byte(v)
			n, v, digits = n+1, 0, 0
			continue
		}
		c := b[i]
		if c < '0' || c > '9' || (digits == 1 && v == 0) {
			return netip.Addr{}, false
		}
		v, digits = v*10+int(c-'0'), digits+1
		if v > 255 {
			return netip.Addr{}, false
		}
	}
	if n != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(a), true
}
