package balancer

import (
	"bytes"
	"net/netip"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Admission control: when the worker that would handle a new call is
// already behind (Options.ShedDelay, Options.ShedQueue), the reader
// answers the INVITE 503 with Retry-After at once, from a raw header
// scan, without parsing it or queueing it. Messages of calls already in
// progress (responses, ACK, BYE, CANCEL, retransmissions) still go to the
// workers, so the calls the balancer has taken keep completing, and a
// Core is never judged by how far behind the balancer itself is.

// shedNew answers in with 503 and reports true when in is an initial
// INVITE with no server transaction yet (not a retransmission) and its
// worker, with q messages queued and the last one taken after lag, is
// too far behind to take another call.
func (b *Balancer) shedNew(in inbound, q int, lag time.Duration) bool {
	behind := (b.opt.ShedQueue > 0 && q >= b.opt.ShedQueue) || (b.opt.ShedDelay > 0 && q > 0 && lag >= b.opt.ShedDelay)
	if !behind || !bytes.HasPrefix(in.data, []byte("INVITE ")) {
		return false
	}
	h := scanHeaders(in.data)
	if h.toTag || len(h.vias) == 0 || h.from == nil || h.to == nil || h.callID == nil || h.cseq == nil {
		return false // in-dialog, or for the worker to refuse properly
	}
	if _, ok := b.stx.get(h.inviteTxKey()); ok {
		// A retransmission of a call already taken (its Core may be
		// setting it up): its transaction answers it with the last
		// response. A 503 now would leave a ghost call on the Core.
		return false
	}
	resp := h.response(503, "Service Unavailable", "Retry-After: "+strconv.Itoa(b.opt.RetryAfter)+"\r\n", in.src)
	dst := in.src
	if in.conn == nil && !h.rport && h.viaPort != 0 {
		dst = netip.AddrPortFrom(in.src.Addr(), h.viaPort)
	}
	b.stats.Shed.Add(1)
	b.stats.Received.Add(1)
	b.stats.Replies5xx.Add(1)
	if err := b.send(in.lis.transport, dst, resp, in.conn); err != nil {
		b.log.Debug("shed reply", "dst", dst, "err", err)
	}
	return true
}

// rawHeaders is what a raw scan finds of the headers a response needs.
type rawHeaders struct {
	vias                   [][]byte // whole lines, in order
	from, to, callID, cseq []byte   // whole lines
	toTag                  bool
	rport                  bool   // top Via asks for rport
	viaHost                []byte // top Via's sent-by host
	viaPort                uint16 // top Via's sent-by port, 0 when absent
}

// scanHeaders reads header lines up to the blank line (no folding: a
// folded header simply is not recognised, and the caller falls back on
// the full parser).
func scanHeaders(p []byte) rawHeaders {
	var h rawHeaders
	i := bytes.IndexByte(p, '\n') // skip the start line
	if i < 0 {
		return h
	}
	for i++; i < len(p); {
		hl, last, ok := nextHeader(p, i)
		if !ok || last {
			return h
		}
		i = hl.next
		line, k, name := hl.line, hl.colon, hl.name
		if k <= 0 {
			continue
		}
		switch {
		case hdrIs(name, "Via", 'v'):
			if len(h.vias) == 0 {
				h.viaHost, h.viaPort, h.rport, _ = viaSentBy(line[k+1:])
			}
			h.vias = append(h.vias, line)
		case hdrIs(name, "From", 'f'):
			h.from = line
		case hdrIs(name, "To", 't'):
			h.to = line
			h.toTag = hasParam(line[k+1:], "tag")
		case hdrIs(name, "Call-ID", 'i'):
			h.callID = line
		case hdrIs(name, "CSeq", 0):
			h.cseq = line
		}
	}
	return h
}

func hdrIs(name []byte, long string, short byte) bool {
	if len(name) == 1 {
		return short != 0 && (name[0]|0x20) == short
	}
	return bytes.EqualFold(name, []byte(long))
}

// hasParam tells whether a header value has the parameter ;name (outside
// a quoted display name or an <addr-spec>).
func hasParam(v []byte, name string) bool {
	_, ok := findParam(v, name)
	return ok
}

// findParam finds ;name or ;name=value in a header value, outside quotes
// and <>; value is nil for a parameter without one.
func findParam(v []byte, name string) (value []byte, found bool) {
	value, _, found = findParamAt(v, name)
	return value, found
}

// findParamAt is findParam that also tells where the parameter's name
// ends in v.
func findParamAt(v []byte, name string) (value []byte, end int, found bool) {
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

// paramByte marks the bytes findParamAt acts on.
var paramByte = [256]bool{'"': true, '<': true, '>': true, ';': true}

// viaSentBy reads the first sent-by of a Via value: its host (an IPv6
// literal without its brackets, as sipgo's ViaHeader.Host), its port (0
// when absent) and whether it asks for rport. plain reports a sent-by
// that sipgo reads the same way: a host, then no port or one from 1 to
// 65535, and no space before the parameters (the raw paths take only
// those).
func viaSentBy(v []byte) (host []byte, port uint16, rport, plain bool) {
	if c := bytes.IndexByte(v, ','); c >= 0 {
		v = v[:c]
	}
	rport = hasParam(v, "rport")
	v = bytes.TrimSpace(v)
	sp := bytes.IndexAny(v, " \t") // after SIP/2.0/UDP
	if sp < 0 {
		return nil, 0, rport, false
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
			return nil, 0, rport, false
		}
		host, rest = hp[1:e], hp[e+1:]
	} else if c := bytes.LastIndexByte(hp, ':'); c >= 0 {
		host, rest = bytes.TrimSpace(hp[:c]), hp[c:]
	} else {
		host = hp
	}
	plain = !spaced && len(host) > 0
	if len(rest) < 2 || rest[0] != ':' {
		return host, 0, rport, plain && len(rest) == 0
	}
	n, err := strconv.Atoi(string(rest[1:]))
	if err != nil || n <= 0 || n > 65535 {
		return host, 0, rport, false
	}
	return host, uint16(n), rport, plain
}

// inviteTxKey is the key (txKey) of the INVITE server transaction that a
// raw INVITE belongs to; "" when it cannot be told.
func (h rawHeaders) inviteTxKey() string {
	if len(h.vias) == 0 {
		return ""
	}
	top := headerValue(h.vias[0])
	if c := bytes.IndexByte(top, ','); c >= 0 {
		top = top[:c]
	}
	branch := paramValue(top, "branch")
	if bytes.HasPrefix(branch, []byte(sip.RFC3261BranchMagicCookie)) {
		return rfc3261Key(branch, h.viaHost, int(h.viaPort), string(sip.INVITE))
	}
	// RFC 2543 peer: the dialog identifiers, as txKey has them.
	seq := headerValue(h.cseq)
	if sp := bytes.IndexAny(seq, " \t"); sp >= 0 {
		seq = seq[:sp]
	}
	n, err := strconv.ParseUint(string(seq), 10, 32)
	if err != nil {
		return ""
	}
	return "2543|" + string(headerValue(h.callID)) + "|" + string(paramValue(headerValue(h.from), "tag")) + "|" +
		strconv.FormatUint(n, 10) + "|" + string(sip.INVITE)
}

// response builds a stateless response from the raw lines: the top Via
// gets received (and rport filled in), the To a tag.
func (h rawHeaders) response(code int, reason, extra string, src netip.AddrPort) []byte {
	var buf bytes.Buffer
	buf.Grow(512)
	buf.WriteString("SIP/2.0 ")
	buf.WriteString(strconv.Itoa(code))
	buf.WriteByte(' ')
	buf.WriteString(reason)
	buf.WriteString("\r\n")
	for i, v := range h.vias {
		if i == 0 {
			// received goes on the first value of the top Via line.
			first, rest := v, []byte(nil)
			if c := bytes.IndexByte(v, ','); c >= 0 {
				first, rest = v[:c], v[c:]
			}
			buf.Write(bytes.TrimRight(first, " \t"))
			buf.WriteString(";received=")
			buf.WriteString(src.Addr().String())
			buf.Write(rest)
		} else {
			buf.Write(v)
		}
		buf.WriteString("\r\n")
	}
	buf.Write(h.from)
	buf.WriteString("\r\n")
	buf.Write(h.to)
	buf.WriteString(";tag=")
	buf.WriteString(statelessTag(headerValue(h.callID)))
	buf.WriteString("\r\n")
	buf.Write(h.callID)
	buf.WriteString("\r\n")
	buf.Write(h.cseq)
	buf.WriteString("\r\n")
	buf.WriteString(extra)
	buf.WriteString("Server: sipedge\r\nContent-Length: 0\r\n\r\n")
	return buf.Bytes()
}

// statelessTag is the To tag of the balancer's stateless replies (shed
// 503s, intake and edge refusals): derived from the Call-ID alone, so the
// ACK of such a reply is known from its raw bytes and absorbed at the
// reader (RFC 3261 17.2.1: that ACK is hop-by-hop and goes no further).
func statelessTag(callID []byte) string {
	return "sh" + strconv.FormatUint(mix64(fnv1a(fnvOffset64, callID)), 36)
}

// headerValue is a whole header line's value, trimmed.
func headerValue(line []byte) []byte {
	if k := bytes.IndexByte(line, ':'); k >= 0 {
		return bytes.TrimSpace(line[k+1:])
	}
	return nil
}

// absorbStatelessAck reports whether p is the ACK of one of our stateless
// replies (its To tag is statelessTag of its Call-ID), counting it: such
// an ACK has no transaction to find, and forwarding it would send a
// hop-by-hop ACK on along the Request-URI.
func (b *Balancer) absorbStatelessAck(p []byte) bool {
	// A To tag of ours starts "sh" right after its '=': without "=sh"
	// anywhere, no scan (one per ACK of every call) is needed.
	if !bytes.HasPrefix(p, []byte("ACK ")) || !bytes.Contains(p, []byte("=sh")) {
		return false
	}
	h := scanHeaders(p)
	if h.to == nil || h.callID == nil {
		return false
	}
	tag := paramValue(headerValue(h.to), "tag")
	if !bytes.HasPrefix(tag, []byte("sh")) || string(tag) != statelessTag(headerValue(h.callID)) {
		return false
	}
	b.stats.StatelessAcks.Add(1)
	return true
}
