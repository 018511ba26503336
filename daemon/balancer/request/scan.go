package request

import (
	"bytes"
	"net/netip"
	"strconv"
	"strings"
)

// The byte-level readers the raw backing (and the balancer's raw
// response and admission scans) are built of. None allocates.

// Header is one header line of a raw message, as NextHeader reads it.
type Header struct {
	Start, Next int    // the line's range in the message, CRLF included
	Line        []byte // without its line end
	Colon       int    // index of ':' in Line (-1: none)
	Name, Value []byte // trimmed, when Colon > 0
}

// NextHeader reads the header line that starts at p[i]. last is true
// at the blank line that ends the headers (h.Next is then where the
// body starts); ok is false when the message ends before it.
func NextHeader(p []byte, i int) (h Header, last, ok bool) {
	j := bytes.IndexByte(p[i:], '\n')
	if j < 0 {
		return h, false, false
	}
	h.Start, h.Next = i, i+j+1
	h.Line = bytes.TrimRight(p[i:i+j], "\r")
	if len(h.Line) == 0 {
		return h, true, true
	}
	if h.Colon = bytes.IndexByte(h.Line, ':'); h.Colon > 0 {
		h.Name, h.Value = bytes.TrimSpace(h.Line[:h.Colon]), bytes.TrimSpace(h.Line[h.Colon+1:])
	}
	return h, false, true
}

// Folded reports a continuation line (RFC 3261 7.3.1), which the raw
// scanners leave to the full parser.
func (h *Header) Folded() bool { return h.Line[0] == ' ' || h.Line[0] == '\t' }

// HeaderIs reports whether name is the header long, or its compact form
// short (0: none), case-insensitively.
func HeaderIs(name []byte, long string, short byte) bool {
	if len(name) == 1 {
		return short != 0 && (name[0]|0x20) == short
	}
	return bytes.EqualFold(name, []byte(long))
}

// FindParam finds ;name or ;name=value in a header value, outside quotes
// and <>; value is nil for a parameter without one.
func FindParam(v []byte, name string) (value []byte, found bool) {
	value, _, found = FindParamAt(v, name)
	return value, found
}

// FindParamAt is FindParam that also tells where the parameter's name
// ends in v.
func FindParamAt(v []byte, name string) (value []byte, end int, found bool) {
	depth, quoted := 0, false
	for i := 0; i < len(v); i++ {
		// Most bytes are none of the four that matter: skip them by
		// table (a tenth of the work of testing each against four).
		for i < len(v) && !paramByte[v[i]] {
			i++
		}
		if i == len(v) {
			break
		}
		switch c := v[i]; {
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '<':
			depth++
		case c == '>':
			depth--
		case depth == 0: // ';'
			rest := bytes.TrimLeft(v[i+1:], " \t")
			if len(rest) < len(name) || !bytes.EqualFold(rest[:len(name)], []byte(name)) {
				continue
			}
			end := len(v) - len(rest) + len(name)
			switch {
			case len(rest) == len(name) || rest[len(name)] == ' ' || rest[len(name)] == ';':
				return nil, end, true
			case rest[len(name)] == '=':
				val := rest[len(name)+1:]
				if e := bytes.IndexAny(val, "; \t,"); e >= 0 {
					val = val[:e]
				}
				return val, end, true
			}
		}
	}
	return nil, 0, false
}

// paramByte marks the bytes FindParamAt acts on.
var paramByte = [256]bool{'"': true, '<': true, '>': true, ';': true}

// exactParam is FindParamAt with odd set when the name found is not
// written as name (lower case): sipgo's parameter lookups are exact, so
// the raw backing leaves such a request to it.
func exactParam(v []byte, name string) (value []byte, end int, found, odd bool) {
	value, end, found = FindParamAt(v, name)
	odd = found && string(v[end-len(name):end]) != name
	if value != nil {
		// What follows the value must end it for sipgo too: a space
		// inside a value ("branch=z9hG4bK 1") is part of it there.
		rest := bytes.TrimLeft(v[cap(v)-cap(value)+len(value):], " \t")
		odd = odd || len(rest) > 0 && rest[0] != ';' && rest[0] != ','
	}
	return value, end, found, odd
}

// ViaSentBy reads the first sent-by of a Via value: its host (an IPv6
// literal without its brackets, as sipgo's ViaHeader.Host), its port (0
// when absent) and whether it asks for rport. plain reports a sent-by
// that sipgo reads the same way: a host, then no port or one from 1 to
// 65535, and no space before the parameters (the raw backing takes only
// those).
func ViaSentBy(v []byte) (host []byte, port uint16, rport, plain bool) {
	if c := bytes.IndexByte(v, ','); c >= 0 {
		v = v[:c]
	}
	_, rport = FindParam(v, "rport")
	host, port, plain = sentBy(v)
	return host, port, rport, plain
}

// sentBy is ViaSentBy without rport, for one Via value.
func sentBy(v []byte) (host []byte, port uint16, plain bool) {
	v = bytes.TrimSpace(v)
	sp := bytes.IndexAny(v, " \t") // after SIP/2.0/UDP
	if sp < 0 {
		return nil, 0, false
	}
	hp := bytes.TrimLeft(v[sp:], " \t")
	if s := bytes.IndexByte(hp, ';'); s >= 0 {
		hp = hp[:s]
	}
	spaced := bytes.IndexAny(hp, " \t") >= 0
	hp = bytes.TrimSpace(hp)
	var rest []byte
	if len(hp) > 0 && hp[0] == '[' {
		e := bytes.IndexByte(hp, ']')
		if e < 0 {
			return nil, 0, false
		}
		host, rest = hp[1:e], hp[e+1:]
		if !ipv6Ref(host) {
			return nil, 0, false
		}
	} else if c := bytes.LastIndexByte(hp, ':'); c >= 0 {
		host, rest = bytes.TrimSpace(hp[:c]), hp[c:]
	} else {
		host = hp
	}
	plain = !spaced && len(host) > 0
	if len(rest) < 2 || rest[0] != ':' {
		return host, 0, plain && len(rest) == 0
	}
	n, err := strconv.Atoi(string(rest[1:]))
	if err != nil || n <= 0 || n > 65535 {
		return host, 0, false
	}
	return host, uint16(n), plain
}

// SplitRoute splits a Route value into its entries (commas outside <>
// and quotes); false on anything it does not follow.
func SplitRoute(v []byte) ([][]byte, bool) {
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

// RouteTarget reads "<sip:[user@]IP[:port][;params]>" or a bare SIP URI
// into a transport and an address, an IPv6 reference in brackets
// included; false for a host name, sips, or anything else the full path
// should look at.
func RouteTarget(e []byte) (string, netip.AddrPort, bool) {
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
	host, ps := u, []byte(nil)
	if len(u) > 0 && u[0] == '[' {
		e := bytes.IndexByte(u, ']')
		if e < 0 {
			return "", netip.AddrPort{}, false
		}
		host, ps = u[1:e], u[e+1:]
		if len(ps) > 0 && ps[0] != ':' {
			return "", netip.AddrPort{}, false
		}
	} else if c := bytes.IndexByte(u, ':'); c >= 0 {
		host, ps = u[:c], u[c:]
	}
	port := 5060
	if len(ps) > 0 {
		n, err := strconv.Atoi(string(ps[1:]))
		if err != nil || n <= 0 || n > 65535 {
			return "", netip.AddrPort{}, false
		}
		port = n
	}
	ip, ok := ParseIPv4(host)
	if !ok {
		var err error
		if ip, err = netip.ParseAddr(string(host)); err != nil || ip.Zone() != "" {
			return "", netip.AddrPort{}, false
		}
	}
	if bracketed := u[0] == '['; bracketed != (ip.Is6() && !ip.Is4In6()) {
		return "", netip.AddrPort{}, false // [IPv4] or an IPv6 address without brackets
	}
	tp := "udp"
	if t, _ := FindParam(params, "transport"); t != nil {
		if !strings.EqualFold(string(t), "udp") {
			tp = strings.ToLower(string(t))
		}
	}
	return tp, netip.AddrPortFrom(ip.Unmap(), uint16(port)), true
}

// ParseIPv4 reads a dotted quad without converting it to a string (no
// allocation); false for anything else, leading zeros included, which
// netip.ParseAddr then judges.
func ParseIPv4(b []byte) (netip.Addr, bool) {
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

// AppendHostPort appends host (an IPv6 literal in brackets, an
// IPv4-mapped one included: sipgo's uriIP leaves that one bare, which no
// parser reads back as it was, RFC 5118 4.9) and ":port" when port is
// set.
func AppendHostPort(buf []byte, host string, port int) []byte {
	v6 := false
	if strings.IndexByte(host, ':') >= 0 { // else no IPv6 literal, and no parse error to allocate
		a, err := netip.ParseAddr(host)
		v6 = err == nil && a.Is6() && a.Zone() == ""
	}
	if v6 {
		buf = append(buf, '[')
		buf = append(buf, host...)
		buf = append(buf, ']')
	} else {
		buf = append(buf, host...)
	}
	if port > 0 {
		buf = append(buf, ':')
		buf = strconv.AppendInt(buf, int64(port), 10)
	}
	return buf
}

// ipv6Ref reports whether the inside of an IPv6 reference's brackets is
// an IPv6 address (RFC 5118 4.10: three colons are not).
func ipv6Ref(b []byte) bool {
	a, err := netip.ParseAddr(string(b))
	return err == nil && a.Is6() && a.Zone() == ""
}
