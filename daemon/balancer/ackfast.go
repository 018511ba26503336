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
	p := in.data
	if in.conn != nil || !bytes.HasPrefix(p, []byte("ACK ")) || b.udpOut == nil {
		return false
	}
	eol := bytes.IndexByte(p, '\n')
	if eol < 0 {
		return false
	}
	startLine := bytes.TrimRight(p[:eol], "\r")
	sp := bytes.LastIndexByte(startLine, ' ')
	if sp <= 4 || string(startLine[sp+1:]) != "SIP/2.0" {
		return false
	}
	ruri := startLine[4:sp]

	type cut struct{ from, to int }
	var (
		branch, callID, sentBy []byte
		viaPort                uint16
		haveVia, haveCSeq      bool
		from, to               bool
		mfFrom, mfTo           = -1, -1 // Max-Forwards value range
		mf                     = -1
		drop                   []cut  // our Route lines
		nextRoute              []byte // first Route entry not ours
		cl                     = -1
		end                    int
	)
	i := eol + 1
	for {
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			return false
		}
		start := i
		line := bytes.TrimRight(p[i:i+j], "\r")
		i += j + 1
		if len(line) == 0 {
			end = i
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return false
		}
		k := bytes.IndexByte(line, ':')
		if k <= 0 {
			return false
		}
		name, val := bytes.TrimSpace(line[:k]), bytes.TrimSpace(line[k+1:])
		switch {
		case hdrIs(name, "Via", 'v'):
			if haveVia {
				continue
			}
			haveVia = true
			first := val
			if c := bytes.IndexByte(val, ','); c >= 0 {
				first = val[:c]
			}
			if bytes.IndexAny(first, "\"[") >= 0 {
				return false
			}
			branch = paramValue(first, "branch")
			if !bytes.HasPrefix(branch, []byte(sip.RFC3261BranchMagicCookie)) {
				return false
			}
			var rport bool
			sentBy, viaPort, rport = viaSentBy(first)
			// received/rport would have to be added (RFC 3261 18.2.1,
			// RFC 3581): the full path does that.
			var ip [64]byte
			if rport || !bytes.Equal(sentBy, in.src.Addr().AppendTo(ip[:0])) {
				return false
			}
		case hdrIs(name, "Call-ID", 'i'):
			callID = val
		case hdrIs(name, "CSeq", 0):
			haveCSeq = bytes.HasSuffix(val, []byte(" ACK"))
		case hdrIs(name, "From", 'f'):
			from = true
		case hdrIs(name, "To", 't'):
			to = true
		case hdrIs(name, "Max-Forwards", 0):
			n, err := strconv.Atoi(string(val))
			if err != nil || n < 0 || mf >= 0 {
				return false
			}
			mf = n
			vs := start + k + 1
			for p[vs] == ' ' || p[vs] == '\t' {
				vs++
			}
			mfFrom, mfTo = vs, vs+len(val)
		case hdrIs(name, "Route", 0):
			if nextRoute != nil {
				continue // beyond the next hop: forwarded as is
			}
			entries, ok := splitRoute(val)
			if !ok {
				return false
			}
			ours := 0
			for _, e := range entries {
				if _, ap, ok := routeTarget(e); !ok || !b.isLocal(ap) {
					break
				}
				ours++
			}
			switch {
			case ours == len(entries):
				drop = append(drop, cut{start, i})
			case ours == 0:
				nextRoute = entries[0]
			default:
				return false // ours and others' on one line
			}
		case hdrIs(name, "Content-Length", 'l'):
			n, err := strconv.Atoi(string(val))
			if err != nil || n < 0 {
				return false
			}
			cl = n
		}
	}
	if !haveVia || !haveCSeq || !from || !to || len(callID) == 0 || (cl >= 0 && cl != len(p)-end) {
		return false
	}
	// The hop-by-hop ACK of a non-2xx final matches our server transaction.
	var kb [128]byte
	if _, ok := b.stx.getBytes(appendTxKey(kb[:0], branch, sentBy, int(viaPort), string(sip.INVITE))); ok {
		return false
	}
	if mf == 0 {
		return true // Max-Forwards exhausted: an ACK gets no answer
	}
	// Next hop: the next Route, else the Request-URI (ours: the dialog's
	// Core).
	var dst netip.AddrPort
	if nextRoute != nil {
		tp, ap, ok := routeTarget(nextRoute)
		if !ok || tp != "udp" {
			return false
		}
		dst = ap
	} else {
		tp, ap, ok := routeTarget(ruri)
		if !ok || tp != "udp" {
			return false
		}
		dst = ap
		if b.isLocal(dst) {
			c := b.dialogs.coreOf(string(callID))
			if c == nil {
				return true // nowhere to go: dropped, as the full path does
			}
			if c.transport != "udp" {
				return false
			}
			dst = c.addr
		}
	}
	if b.isLocal(dst) {
		return true
	}
	out := b.udpOut
	buf := bufPool.Get().(*bytes.Buffer) // sent at once over UDP, kept nowhere
	defer bufPool.Put(buf)
	buf.Reset()
	buf.Grow(len(p) + 96)
	buf.Write(p[:eol+1])
	buf.WriteString("Via: SIP/2.0/")
	buf.WriteString(out.viaTp)
	buf.WriteByte(' ')
	writeHostPort(buf, out.host, int(out.addr.Port()))
	buf.WriteString(";branch=")
	buf.WriteString(sip.RFC3261BranchMagicCookie + "sl")
	var num [16]byte
	buf.Write(strconv.AppendUint(num[:0], mix64(fnv1a(fnv1a(fnvOffset64, branch), callID)), 36))
	buf.WriteString("\r\n")
	pos := eol + 1
	for _, d := range drop {
		pos = writeRange(buf, p, pos, d.from, mfFrom, mfTo, mf)
		pos = d.to
	}
	writeRange(buf, p, pos, len(p), mfFrom, mfTo, mf)
	b.stats.Forwarded.Add(1)
	if err := b.send("udp", dst, buf.Bytes(), nil); err != nil {
		b.log.Debug("forward ack", "dst", dst, "err", err)
	}
	return true
}

// writeRange copies p[from:to] to buf, with the Max-Forwards value (at
// mfFrom:mfTo) replaced by mf-1 when it falls inside; it returns to.
func writeRange(buf *bytes.Buffer, p []byte, from, to, mfFrom, mfTo, mf int) int {
	if mfFrom >= from && mfTo <= to && mfFrom >= 0 {
		buf.Write(p[from:mfFrom])
		buf.WriteString(strconv.Itoa(mf - 1))
		buf.Write(p[mfTo:to])
		return to
	}
	buf.Write(p[from:to])
	return to
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
