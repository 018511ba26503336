package balancer

import (
	"bytes"
	"net/netip"
	"strconv"

	"github.com/emiago/sipgo/sip"
)

// rawRequest is what the raw fast paths (fastAck, fastInDialog) read of
// a request from its bytes, without sipgo's parse: enough to key its
// transaction, find its next hop and forward it.
type rawRequest struct {
	p       []byte
	method  []byte // as in the start line
	eol     int    // index of the start line's '\n'
	ruri    []byte
	branch  []byte // top Via's
	sentBy  []byte // top Via's host
	viaPort uint16 // top Via's port (0: none)
	callID  []byte
	toTag   bool
	fromTag []byte // From's tag value (nil: none)
	toTagV  []byte // To's tag value
	cseq    uint32
	mf      int // Max-Forwards (-1: none)
	mfFrom  int // its value's byte range in p
	mfTo    int
	drop    [4]lineCut // our own Route lines
	ndrop   int
	next    []byte // first Route entry not ours (nil: none)

	// What the full path's fillReceived adds to the top Via (RFC 3261
	// 18.2.1, RFC 3581 4), as insertions into p: the source port after a
	// valueless rport, and received when sent-by is not the source
	// address. -1: none.
	rportAt, recvAt int
	src             netip.AddrPort
}

// rport reports whether the top Via asked for rport: responses then go
// to the source address and port.
func (r *rawRequest) rport() bool { return r.rportAt >= 0 }

// replyAddr is where responses to r go (replyAddr of the full path).
func (r *rawRequest) replyAddr() netip.AddrPort {
	if r.rport() {
		return r.src
	}
	port := r.viaPort
	if port == 0 {
		port = 5060
	}
	return netip.AddrPortFrom(r.src.Addr(), port)
}

// lineCut is a header line's byte range, CRLF included.
type lineCut struct{ from, to int }

// scanRequest reads in's request for a fast path. It declines (false)
// anything unusual, which the full path then handles: folded lines, a
// top Via with a quoted string or an IPv6 reference, no RFC 3261 branch,
// a top Via with a received already or an rport with a value, a
// sent-by sipgo would not read (empty, a bad port, a space before the
// parameters), branch, rport, received or tag not in lower case (sipgo's
// parameter names are), a missing or repeated From, To, Call-ID or CSeq,
// a CSeq method that is not the start line's, a Request-URI with a
// space, a Route line mixing our entries and others', more than
// four of our Route lines, a Content-Length that does not match the
// body, and what intake would refuse (more than MaxHeaders fields, a
// Request-URI over MaxURIBytes).
func (b *Balancer) scanRequest(in inbound) (r rawRequest, ok bool) {
	p := in.data
	r.p, r.mf, r.mfFrom, r.mfTo = p, -1, -1, -1
	r.rportAt, r.recvAt, r.src = -1, -1, in.src
	eol := bytes.IndexByte(p, '\n')
	if eol < 0 {
		return r, false
	}
	r.eol = eol
	startLine := bytes.TrimRight(p[:eol], "\r")
	sp1 := bytes.IndexByte(startLine, ' ')
	sp := bytes.LastIndexByte(startLine, ' ')
	if sp1 <= 0 || sp <= sp1+1 || string(startLine[sp+1:]) != "SIP/2.0" {
		return r, false
	}
	r.method, r.ruri = startLine[:sp1], startLine[sp1+1:sp]
	if len(r.ruri) > b.opt.MaxURIBytes || bytes.IndexAny(r.ruri, " \t") >= 0 {
		return r, false
	}
	var haveVia, haveCSeq, from, to bool
	cl, headers, end := -1, 0, 0
	for i := eol + 1; ; {
		h, last, ok := nextHeader(p, i)
		if !ok {
			return r, false
		}
		start, k, name, val := h.start, h.colon, h.name, h.val
		i = h.next
		if last {
			end = i
			break
		}
		if h.folded() || k <= 0 {
			return r, false
		}
		headers++
		if hdrIs(name, "Via", 'v') || hdrIs(name, "Route", 0) || hdrIs(name, "Record-Route", 0) {
			headers += bytes.Count(val, []byte{','}) // sipgo counts each value
		}
		if headers > b.opt.MaxHeaders {
			return r, false
		}
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
				return r, false
			}
			var odd bool
			r.branch, _, _, odd = exactParam(first, "branch")
			if odd || !bytes.HasPrefix(r.branch, []byte(sip.RFC3261BranchMagicCookie)) {
				return r, false
			}
			first = bytes.TrimRight(first, " \t")
			var plain bool
			if r.sentBy, r.viaPort, _, plain = viaSentBy(first); !plain {
				return r, false
			}
			at := cap(p) - cap(first) // first's offset in p
			if v, end, rport, odd := exactParam(first, "rport"); odd || v != nil {
				return r, false
			} else if rport {
				if rest := bytes.TrimLeft(first[end:], " \t"); len(rest) > 0 && rest[0] == '=' {
					return r, false // "rport = 5060": a value after all
				}
				r.rportAt = at + end
			}
			var ip [64]byte
			if !bytes.Equal(r.sentBy, in.src.Addr().AppendTo(ip[:0])) {
				if _, _, ok, _ := exactParam(first, "received"); ok {
					return r, false
				}
				r.recvAt = at + len(first)
			}
		case hdrIs(name, "Call-ID", 'i'):
			if r.callID != nil {
				return r, false
			}
			r.callID = val
		case hdrIs(name, "CSeq", 0):
			if haveCSeq {
				return r, false
			}
			sp := bytes.IndexByte(val, ' ')
			if sp <= 0 || !bytes.Equal(bytes.TrimSpace(val[sp+1:]), r.method) {
				return r, false
			}
			n, err := strconv.ParseUint(string(val[:sp]), 10, 32)
			if err != nil {
				return r, false
			}
			r.cseq, haveCSeq = uint32(n), true
		case hdrIs(name, "From", 'f'):
			tag, _, _, odd := exactParam(val, "tag")
			if from || odd {
				return r, false
			}
			from, r.fromTag = true, tag
		case hdrIs(name, "To", 't'):
			tagV, _, tag, odd := exactParam(val, "tag")
			if to || odd {
				return r, false
			}
			to, r.toTag, r.toTagV = true, tag, tagV
		case hdrIs(name, "Max-Forwards", 0):
			n, from, to, ok := maxForwards(h.line, k)
			if !ok || n > 255 || r.mf >= 0 {
				return r, false // the full path answers 400 (not digits) or judges it
			}
			r.mf, r.mfFrom, r.mfTo = n, start+from, start+to
		case hdrIs(name, "Route", 0):
			if r.next != nil {
				continue // beyond the next hop: forwarded as is
			}
			entries, ok := splitRoute(val)
			if !ok {
				return r, false
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
				if r.ndrop == len(r.drop) {
					return r, false
				}
				r.drop[r.ndrop] = lineCut{start, i}
				r.ndrop++
			case ours == 0:
				r.next = entries[0]
			default:
				return r, false // ours and others' on one line
			}
		case hdrIs(name, "Content-Length", 'l'):
			n, err := strconv.Atoi(string(val))
			if err != nil || n < 0 {
				return r, false
			}
			cl = n
		}
	}
	if !haveVia || !haveCSeq || !from || !to || len(r.callID) == 0 || (cl >= 0 && cl != len(p)-end) {
		return r, false
	}
	return r, true
}

// exactParam is findParamAt with odd set when the name found is not
// written as name (lower case): sipgo's parameter lookups are exact, so
// the raw paths leave such a request to it.
func exactParam(v []byte, name string) (value []byte, end int, found, odd bool) {
	value, end, found = findParamAt(v, name)
	return value, end, found, found && string(v[end-len(name):end]) != name
}

// rawHeader is one header line of a raw message, read by nextHeader
// for the raw scanners (scanRequest, scanResponse, scanHeaders).
type rawHeader struct {
	start, next int    // the line's range in the message, CRLF included
	line        []byte // without its line end
	colon       int    // index of ':' in line (-1: none)
	name, val   []byte // trimmed, when colon > 0
}

// nextHeader reads the header line that starts at p[i]. last is true
// at the blank line that ends the headers (h.next is then where the
// body starts); ok is false when the message ends before it.
func nextHeader(p []byte, i int) (h rawHeader, last, ok bool) {
	j := bytes.IndexByte(p[i:], '\n')
	if j < 0 {
		return h, false, false
	}
	h.start, h.next = i, i+j+1
	h.line = bytes.TrimRight(p[i:i+j], "\r")
	if len(h.line) == 0 {
		return h, true, true
	}
	if h.colon = bytes.IndexByte(h.line, ':'); h.colon > 0 {
		h.name, h.val = bytes.TrimSpace(h.line[:h.colon]), bytes.TrimSpace(h.line[h.colon+1:])
	}
	return h, false, true
}

// folded is a continuation line (RFC 3261 7.3.1), which the raw
// scanners leave to the full parser.
func (h *rawHeader) folded() bool { return h.line[0] == ' ' || h.line[0] == '\t' }

// hop is what rawNextHop found.
type hop int

const (
	hopOK      hop = iota
	hopNone        // addressed to us, and nowhere to go (no dialog, or a loop)
	hopDecline     // the full path must decide (TCP, a host name, ...)
)

// rawNextHop is where r goes: its next Route, else its Request-URI; one
// that is ours means the dialog's Core (RFC 3261 16.4, 16.6 step 6).
func (b *Balancer) rawNextHop(r *rawRequest) (netip.AddrPort, hop) {
	target := r.ruri
	if r.next != nil {
		target = r.next
	}
	tp, dst, ok := routeTarget(target)
	if !ok || tp != "udp" {
		return dst, hopDecline
	}
	if r.next == nil && b.isLocal(dst) {
		c := b.dialogs.coreOf(string(r.callID))
		if c == nil {
			return dst, hopNone
		}
		if c.transport != "udp" {
			return dst, hopDecline
		}
		dst = c.addr
	}
	if b.isLocal(dst) {
		return dst, hopNone
	}
	return dst, hopOK
}

// appendForward appends r as forwarded to buf: the start line, our Via
// on out with branch, the lines in extra (our Record-Route), then the
// rest of the message without our Route lines and with Max-Forwards
// decremented.
func appendForward[S string | []byte](r *rawRequest, buf []byte, out *listener, branch S, extra string) []byte {
	p := r.p
	buf = append(buf, p[:r.eol+1]...)
	buf = append(buf, "Via: SIP/2.0/"...)
	buf = append(buf, out.viaTp...)
	buf = append(buf, ' ')
	buf = appendHostPort(buf, out.host, int(out.addr.Port()))
	buf = append(buf, ";branch="...)
	buf = append(buf, branch...)
	buf = append(buf, "\r\n"...)
	buf = append(buf, extra...)
	pos := r.eol + 1
	for _, d := range r.drop[:r.ndrop] {
		buf = r.appendRange(buf, pos, d.from)
		pos = d.to
	}
	return r.appendRange(buf, pos, len(p))
}

// rawEdit is one change appendRange makes to the bytes: p[at:end]
// replaced (end == at: an insertion).
type rawEdit struct {
	at, end int
	kind    uint8
}

const (
	editMaxForwards = iota // the value, one less
	editRport              // "=port" after a valueless rport
	editReceived           // ";received=IP" at the end of the top Via
)

// edits returns r's edits in the order they come in p.
func (r *rawRequest) edits(dst *[3]rawEdit) []rawEdit {
	e := dst[:0]
	if r.mf > 0 && r.mfFrom >= 0 {
		e = append(e, rawEdit{r.mfFrom, r.mfTo, editMaxForwards})
	}
	if r.rportAt >= 0 {
		e = append(e, rawEdit{r.rportAt, r.rportAt, editRport})
	}
	if r.recvAt >= 0 {
		e = append(e, rawEdit{r.recvAt, r.recvAt, editReceived})
	}
	for i := 1; i < len(e); i++ {
		for j := i; j > 0 && e[j].at < e[j-1].at; j-- {
			e[j], e[j-1] = e[j-1], e[j]
		}
	}
	return e
}

// appendRange appends p[from:to] with the edits that fall inside it
// made: Max-Forwards one less, and the top Via's rport and received
// filled.
func (r *rawRequest) appendRange(buf []byte, from, to int) []byte {
	p := r.p
	var arr [3]rawEdit
	for _, e := range r.edits(&arr) {
		if e.at < from || e.end > to {
			continue
		}
		buf = append(buf, p[from:e.at]...)
		switch e.kind {
		case editMaxForwards:
			buf = strconv.AppendInt(buf, int64(r.mf-1), 10)
		case editRport:
			buf = append(buf, '=')
			buf = strconv.AppendUint(buf, uint64(r.src.Port()), 10)
		case editReceived:
			buf = append(buf, ";received="...)
			buf = r.src.Addr().AppendTo(buf)
		}
		from = e.end
	}
	return append(buf, p[from:to]...)
}
