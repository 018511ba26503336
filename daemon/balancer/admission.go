package balancer

import (
	"bytes"
	"github.com/sipedge/sipedge/daemon/balancer/request"
	"net/netip"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"
)

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
	// Retry-After only toward sources outside the trusted networks (a
	// caller's UA waits that long before it tries again). A trusted
	// upstream is a proxy, which would send this box nothing at all for
	// that long (RFC 3261 21.5.4): for a moment's overload that is the
	// whole trunk gone, so it gets a plain 503 and tries this call
	// elsewhere (or passes the 503 on).
	extra := ""
	if !in.trusted {
		extra = b.retryAfter()
	}
	resp := h.response(503, "Service Unavailable", extra, in.src)
	dst := in.src
	if in.conn == nil && !h.rport && h.viaPort != 0 {
		dst = netip.AddrPortFrom(in.src.Addr(), h.viaPort)
	}
	b.stats.Shed.Add(1)
	b.stats.Received.Add(1)
	b.stats.countReply(503)
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
		hl, last, ok := request.NextHeader(p, i)
		if !ok || last {
			return h
		}
		i = hl.Next
		line, k, name := hl.Line, hl.Colon, hl.Name
		if k <= 0 {
			continue
		}
		switch {
		case request.HeaderIs(name, "Via", 'v'):
			if len(h.vias) == 0 {
				h.viaHost, h.viaPort, h.rport, _ = request.ViaSentBy(line[k+1:])
			}
			h.vias = append(h.vias, line)
		case request.HeaderIs(name, "From", 'f'):
			h.from = line
		case request.HeaderIs(name, "To", 't'):
			h.to = line
			_, h.toTag = request.FindParam(line[k+1:], "tag")
		case request.HeaderIs(name, "Call-ID", 'i'):
			h.callID = line
		case request.HeaderIs(name, "CSeq", 0):
			h.cseq = line
		}
	}
	return h
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
		return string(request.AppendTxKey(nil, branch, h.viaHost, int(h.viaPort), string(sip.INVITE)))
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
	return "sh" + strconv.FormatUint(request.Mix64(request.FNV1a(request.FNVOffset64, callID)), 36)
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
