package request

import (
	"bytes"
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Scan reads a request received over UDP from src for the raw backing.
// It declines (false) anything unusual, which the full path (Parse)
// then handles: a line not ended by CRLF, folded lines, a top Via with a quoted string or an IPv6
// reference, no RFC 3261 branch, a top Via with a received already or
// an rport with a value, a sent-by sipgo would not read (empty, a bad
// port, a space before the parameters), branch, rport, received or tag
// not in lower case (sipgo's parameter names are), a missing or
// repeated From, To, Call-ID or CSeq, a CSeq method that is not the
// start line's, a Request-URI that is not a plain sip: URI, a Route
// line mixing our entries and others', more than four of our Route
// lines, a missing, repeated or bad Max-Forwards or Content-Length, one
// that does not match the body, and what intake would refuse (more than
// MaxHeaders fields, a Request-URI over MaxURIBytes).
func Scan(p []byte, src netip.AddrPort, cfg *Config) (req Request, ok bool) {
	req = Request{cfg: cfg, src: src}
	r := &req.raw
	r.p, r.mf, r.mfFrom, r.mfTo = p, -1, -1, -1
	r.rportAt, r.recvAt = -1, -1
	eol := bytes.IndexByte(p, '\n')
	if eol < 1 || p[eol-1] != '\r' {
		return req, false
	}
	r.eol = eol
	startLine := p[:eol-1]
	if bytes.IndexByte(startLine, '\r') >= 0 {
		return req, false
	}
	sp1 := bytes.IndexByte(startLine, ' ')
	sp := bytes.LastIndexByte(startLine, ' ')
	if sp1 <= 0 || sp <= sp1+1 || string(startLine[sp+1:]) != "SIP/2.0" {
		return req, false
	}
	r.method, r.ruri = startLine[:sp1], startLine[sp1+1:sp]
	if len(r.ruri) > cfg.MaxURIBytes || bytes.IndexAny(r.ruri, " \t") >= 0 || !plainSIPURI(r.ruri) || !token(r.method) {
		return req, false
	}
	var haveVia, haveCSeq, haveCallID, from, to bool
	cl, headers, end := -1, 0, 0
	for i := eol + 1; ; {
		h, last, ok := NextHeader(p, i)
		if !ok {
			return req, false
		}
		start, k, name, val := h.Start, h.Colon, h.Name, h.Value
		i = h.Next
		if i < 2 || p[i-2] != '\r' || bytes.IndexByte(p[h.Start:i-2], '\r') >= 0 {
			return req, false // RFC 3261 7: CRLF line ends, no other CR (sipgo reads no other)
		}
		if last {
			end, r.end = i, i
			break
		}
		if h.Folded() || k <= 0 {
			return req, false
		}
		headers++
		if HeaderIs(name, "Via", 'v') || HeaderIs(name, "Route", 0) || HeaderIs(name, "Record-Route", 0) {
			headers += bytes.Count(val, []byte{','}) // sipgo counts each value
		}
		if headers > cfg.MaxHeaders {
			return req, false
		}
		switch {
		case HeaderIs(name, "Via", 'v'):
			if !viaValues(val) {
				return req, false
			}
			if haveVia {
				continue
			}
			haveVia = true
			if !r.scanVia(p, val, src) {
				return req, false
			}
		case HeaderIs(name, "Call-ID", 'i'):
			if haveCallID || len(val) == 0 || bytes.IndexByte(val, ',') >= 0 {
				return req, false
			}
			r.callID, haveCallID = val, true
		case HeaderIs(name, "CSeq", 0):
			if haveCSeq {
				return req, false
			}
			sp := bytes.IndexByte(val, ' ')
			if sp <= 0 || !bytes.Equal(val[sp+1:], r.method) { // one SP: sipgo keeps another in the method
				return req, false
			}
			n, err := strconv.ParseUint(string(val[:sp]), 10, 32)
			if err != nil {
				return req, false
			}
			r.cseq, haveCSeq = uint32(n), true
		case HeaderIs(name, "From", 'f'):
			tag, _, _, odd := exactParam(val, "tag")
			if from || odd || !nameAddr(val) {
				return req, false
			}
			from, r.fromTag = true, tag
		case HeaderIs(name, "To", 't'):
			tagV, _, tag, odd := exactParam(val, "tag")
			if to || odd || !nameAddr(val) {
				return req, false
			}
			to, r.toTag, r.toTagV = true, tag, tagV
		case HeaderIs(name, "Max-Forwards", 0):
			n, from, to, ok := MaxForwardsValue(h.Line, k)
			if !ok || n > 255 || r.mf >= 0 {
				return req, false // the full path answers 400 (not digits) or judges it
			}
			r.mf, r.mfFrom, r.mfTo = n, start+from, start+to
		case HeaderIs(name, "Proxy-Require", 0):
			return req, false // the full path answers 420
		case HeaderIs(name, "Record-Route", 0):
			if !routeValues(val) {
				return req, false
			}
		case HeaderIs(name, "Route", 0):
			if !r.scanRoute(val, start, i, cfg) {
				return req, false
			}
		case HeaderIs(name, "Content-Length", 'l'):
			n, err := strconv.Atoi(string(val))
			if err != nil || n < 0 || cl >= 0 {
				return req, false
			}
			cl = n
		}
	}
	if !haveVia || !haveCSeq || !from || !to || len(r.callID) == 0 || (cl >= 0 && cl != len(p)-end) {
		return req, false
	}
	return req, true
}

// scanVia reads the top Via value (the first on its line) for the raw
// backing: branch, sent-by, and where received and rport go.
func (r *raw) scanVia(p, val []byte, src netip.AddrPort) bool {
	first := val
	if c := bytes.IndexByte(val, ','); c >= 0 {
		first = val[:c]
	}
	if bytes.IndexByte(first, '"') >= 0 || !viaProtocol(first) {
		return false
	}
	var odd bool
	r.branch, _, _, odd = exactParam(first, "branch")
	if odd || !bytes.HasPrefix(r.branch, []byte(sip.RFC3261BranchMagicCookie)) {
		return false
	}
	first = bytes.TrimRight(first, " \t")
	var plain bool
	if r.sentBy, r.viaPort, _, plain = ViaSentBy(first); !plain {
		return false
	}
	at := cap(p) - cap(first) // first's offset in p
	if v, end, rport, odd := exactParam(first, "rport"); odd || v != nil {
		return false
	} else if rport {
		if rest := bytes.TrimLeft(first[end:], " \t"); len(rest) > 0 && rest[0] == '=' {
			return false // "rport = 5060": a value after all
		}
		r.rportAt = at + end
	}
	if !sentByIs(r.sentBy, src.Addr()) {
		if _, _, ok, _ := exactParam(first, "received"); ok {
			return false
		}
		r.recvAt = at + len(first)
	}
	return true
}

// scanRoute reads one Route line (from start to next in p): a line of
// our own entries only is cut when forwarding, the first entry not ours
// is the next hop, lines after it are forwarded as they are.
func (r *raw) scanRoute(val []byte, start, next int, cfg *Config) bool {
	if !routeValues(val) {
		return false
	}
	if r.next != nil {
		return true // beyond the next hop: forwarded as is
	}
	entries, _ := SplitRoute(val)
	ours := 0
	for _, e := range entries {
		if _, ap, ok := RouteTarget(e); !ok || !cfg.local(ap) {
			break
		}
		ours++
	}
	switch {
	case ours == len(entries):
		if r.ndrop == len(r.drop) {
			return false
		}
		r.drop[r.ndrop] = lineCut{start, next}
		r.ndrop++
	case ours == 0:
		r.next = entries[0]
	default:
		return false // ours and others' on one line
	}
	return true
}

// plainSIPURI reports whether u is a sip: URI with a host, written with
// the characters RFC 3261's grammar allows, which is what the full
// path's intake (validate) lets through; anything else is left to it
// (416, 400, or a parse of its own).
func plainSIPURI(u []byte) bool {
	if len(u) < 5 || !bytes.EqualFold(u[:4], []byte("sip:")) {
		return false
	}
	for _, c := range u[4:] {
		if !uriChar(c) {
			return false
		}
	}
	host := u[4:]
	if at := bytes.IndexByte(host, '@'); at >= 0 {
		user := host[:at]
		if bytes.IndexAny(user, "[]") >= 0 || bytes.Count(user, []byte{':'}) > 1 || len(user) > 0 && user[len(user)-1] == ':' {
			return false // sipgo drops an empty password, and reads one colon only
		}
		host = host[at+1:]
	}
	if e := bytes.IndexAny(host, ";?"); e >= 0 {
		host = host[:e]
	}
	if len(host) == 0 {
		return false
	}
	port := []byte(nil)
	if c := host[0]; c == '[' {
		e := bytes.IndexByte(host, ']')
		if e < 0 || e < len(host)-1 && host[e+1] != ':' || !ipv6Ref(host[1:e]) {
			return false
		}
		port = host[e+1:]
	} else if bytes.IndexAny(host, "[]") >= 0 {
		return false // brackets only around an IPv6 host
	} else if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
		return false
	} else if c := bytes.IndexByte(host, ':'); c >= 0 {
		port = host[c:] // an IPv6 address needs its brackets (RFC 5118 4.2): no second colon
	}
	if len(port) > 0 {
		n, err := strconv.Atoi(string(port[1:]))
		return err == nil && n > 0 && n <= 65535 && port[1] != '+'
	}
	return true
}

// token reports whether m is an RFC 3261 token (a method name).
func token(m []byte) bool {
	for _, c := range m {
		if !tokenChar(c) {
			return false
		}
	}
	return len(m) > 0
}

// nameAddr reports whether a From or To value is one the raw backing
// reads as sipgo does: quotes balanced (a quoted-pair inside them), and
// the URI, in <> or bare up to its parameters, without whitespace (RFC
// 4475 3.1.2.6, 3.1.2.16: invalid, which the full path refuses).
func nameAddr(v []byte) bool {
	quoted := false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		}
	}
	if quoted {
		return false
	}
	uri := v
	if lt := bytes.IndexByte(v, '<'); lt >= 0 {
		gt := bytes.IndexByte(v[lt:], '>')
		if gt < 0 {
			return false
		}
		uri = v[lt+1 : lt+gt]
		if !displayName(bytes.TrimSpace(v[:lt])) {
			return false
		}
		if rest := bytes.TrimLeft(v[lt+gt+1:], " \t"); len(rest) > 0 && (rest[0] != ';' || !plainParams(rest)) {
			return false
		}
	} else if bytes.IndexByte(v, '"') >= 0 || bytes.IndexByte(v, '>') >= 0 {
		return false
	} else if semi := bytes.IndexByte(v, ';'); semi >= 0 {
		uri = v[:semi]
	}
	return plainSIPURI(uri)
}

// viaProtocol reports whether a Via value starts with SIP/2.0/ and a
// transport the balancer knows, then whitespace (sipgo refuses less).
func viaProtocol(v []byte) bool {
	if len(v) < 12 || string(v[:8]) != "SIP/2.0/" {
		return false
	}
	sp := bytes.IndexAny(v, " \t")
	if sp < 0 || sp+1 < len(v) && (v[sp+1] == ' ' || v[sp+1] == '\t') {
		return false // one SP before sent-by: sipgo loses a bracketed host after two
	}
	switch strings.ToUpper(string(v[8:sp])) {
	case "UDP", "TCP", "TLS", "SCTP", "WS", "WSS":
		return true
	}
	return false
}

// uriChar reports a character a SIP URI may hold (RFC 3261 25.1:
// unreserved, reserved, escaped, and the brackets of an IPv6 reference).
func uriChar(c byte) bool { return uriChars[c] }

// uriChars marks uriChar's characters. No '?': headers are the full
// path's 400.
var uriChars = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-_.!~*'()%;/:@&=+$,[]" {
		t[c] = true
	}
	return t
}()

// viaValues reports whether each value of a Via line starts as a Via
// must (viaProtocol) with a sent-by sipgo reads as written (ViaSentBy):
// it refuses a message with one that does not, or renders it otherwise.
func viaValues(v []byte) bool {
	if bytes.IndexByte(v, '"') >= 0 {
		return false // a quoted parameter: sipgo renders it otherwise
	}
	for {
		one, rest, more := bytes.Cut(v, []byte{','})
		one = bytes.TrimSpace(one)
		if _, _, plain := sentBy(one); !plain || !viaProtocol(one) {
			return false
		}
		if semi := bytes.IndexByte(one, ';'); semi >= 0 {
			ps := one[semi:]
			if bytes.IndexAny(ps, " \t") >= 0 || bytes.Contains(ps, []byte(";;")) || ps[len(ps)-1] == ';' || bytes.Contains(ps, []byte(";=")) {
				return false // spaces or empty parameters: sipgo reads them otherwise
			}
		}
		if !more {
			return true
		}
		v = rest
	}
}

// routeValues reports whether each entry of a Route or Record-Route
// line is a name-addr the raw backing reads (RFC 3261 20.30, 20.34).
// It makes no slice of the entries (SplitRoute does): it runs on every
// Route and Record-Route line of the raw paths.
func routeValues(v []byte) bool {
	depth, start := 0, 0
	for i := 0; i <= len(v); i++ {
		if i < len(v) {
			switch v[i] {
			case '"':
				return false
			case '<':
				depth++
				continue
			case '>':
				depth--
				continue
			case ',':
				if depth != 0 {
					continue
				}
			default:
				continue
			}
		}
		e := bytes.TrimSpace(v[start:i])
		if len(e) == 0 || e[0] != '<' || !nameAddr(e) {
			return false
		}
		start = i + 1
	}
	return depth == 0
}

// plainParams reports parameters (";a=b;c") written as sipgo renders
// them back: no whitespace, no empty name (it drops "; =").
func plainParams(ps []byte) bool {
	if bytes.IndexAny(ps, " \t") >= 0 || ps[len(ps)-1] == ';' {
		return false
	}
	return !bytes.Contains(ps, []byte(";;")) && !bytes.Contains(ps, []byte(";="))
}

// displayName reports a display name the raw backing reads as sipgo
// does: none, a quoted string alone, or tokens and spaces (RFC 3261
// 25.1 display-name).
func displayName(d []byte) bool {
	if len(d) == 0 {
		return true
	}
	if d[0] == '"' {
		return len(d) > 1 && d[len(d)-1] == '"'
	}
	for _, c := range d {
		if c != ' ' && c != '\t' && !tokenChar(c) {
			return false
		}
	}
	return true
}

// tokenChar is a character of an RFC 3261 token.
func tokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || bytes.IndexByte([]byte("-.!%*_+`'~"), c) >= 0
}
