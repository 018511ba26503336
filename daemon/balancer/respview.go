package balancer

import (
	"bytes"
	"github.com/sipedge/sipedge/daemon/balancer/request"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// respView is what the proxy needs of a response on one of its client
// transactions. It comes from sipgo's parser (res) or, on the fast path,
// from a raw scan of the datagram: a Core's 180 and 200 are half the
// messages of a call, and forwarding one needs no more than its status,
// top Via branch and CSeq method, and the bytes without that Via.
type respView struct {
	code   int
	cancel bool          // a response to our CANCEL
	bye    bool          // CSeq method BYE (on an INVITE's branch: our BYE of a late 2xx)
	res    *sip.Response // parsed; nil on the raw path

	raw         []byte // the whole message as received (the raw path cuts our Via out of it in place)
	viaFrom     int    // raw path: the top Via line, CRLF included
	viaTo       int
	toFrom      int // raw path: the To line, raw[toFrom:toTo] (toTo 0: none)
	toTo        int
	se          time.Duration // raw path: Session-Expires
	fwd         []byte
	fwdRendered bool
}

// forward returns the response without our Via (rendered once). On the
// raw path the Via is cut out of raw itself, which is the message's own
// copy (the reader copies each datagram out of its buffers): no new
// buffer; raw is no longer the message as received afterwards.
func (v *respView) forward() []byte {
	if v.fwdRendered {
		return v.fwd
	}
	v.fwdRendered = true
	if v.res != nil {
		v.res.RemoveHeader("Via")
		v.fwd = request.Render(v.res)
		return v.fwd
	}
	n := copy(v.raw[v.viaFrom:], v.raw[v.viaTo:])
	v.fwd = v.raw[:v.viaFrom+n]
	v.raw = nil
	return v.fwd
}

// bytes is the response as received, or as forwarded once forward has
// cut our Via out of it.
func (v *respView) bytes() []byte {
	if v.raw != nil {
		return v.raw
	}
	return v.fwd
}

// toLine is the To header line, for the ACK of a non-2xx final.
func (v *respView) toLine() string {
	if v.res != nil {
		return v.res.To().String()
	}
	if v.raw == nil { // forwarded: the lines after our Via moved up
		from, to := v.toFrom, v.toTo
		if from >= v.viaTo {
			from, to = from-(v.viaTo-v.viaFrom), to-(v.viaTo-v.viaFrom)
		}
		return string(v.fwd[from:to])
	}
	return string(v.raw[v.toFrom:v.toTo])
}

func (v *respView) sessionExpires() time.Duration {
	if v.res != nil {
		return sessionExpires(v.res)
	}
	return v.se
}

// scanResponse reads a response for the fast path: status code, the top
// Via's branch (in p) and byte range, CSeq method, To line and Session-Expires.
// It declines (ok false) anything unusual — folded lines, a quoted
// string in the top Via, a missing mandatory header, a Content-Length
// that does not match the body — and the full parser handles those.
func scanResponse(p []byte) (v respView, branch []byte, ok bool) {
	if len(p) < 12 || !bytes.HasPrefix(p, []byte("SIP/2.0 ")) || p[11] != ' ' && p[11] != '\r' {
		return v, nil, false
	}
	code, err := strconv.Atoi(string(p[8:11]))
	if err != nil || code < 100 || code > 699 {
		return v, nil, false
	}
	v.code, v.raw = code, p
	i := bytes.IndexByte(p, '\n')
	if i < 0 {
		return v, nil, false
	}
	var haveVia, haveCSeq, haveCallID bool
	cl := -1
	for i++; i < len(p); {
		h, last, ok := request.NextHeader(p, i)
		if !ok {
			return v, nil, false
		}
		start, line, k, name, val := h.Start, h.Line, h.Colon, h.Name, h.Value
		i = h.Next
		if last {
			body := len(p) - i
			if !haveVia || !haveCSeq || !haveCallID || v.toTo == 0 || cl != body {
				return v, nil, false
			}
			return v, branch, true
		}
		if h.Folded() || k <= 0 {
			return v, nil, false
		}
		switch {
		case request.HeaderIs(name, "Via", 'v'):
			if haveVia {
				continue
			}
			haveVia = true
			first := val
			c := bytes.IndexByte(val, ',')
			if c >= 0 {
				first = val[:c]
			}
			b := paramValue(first, "branch")
			if len(b) == 0 || bytes.IndexByte(first, '"') >= 0 {
				return v, nil, false
			}
			branch = b
			if c < 0 {
				v.viaFrom, v.viaTo = start, i // the whole line
				break
			}
			// Several values on the line (SIPp's [last_Via:] joins them):
			// cut the first value and its comma, keep "Via: " and the rest.
			vs := start + k + 1
			for p[vs] == ' ' || p[vs] == '\t' {
				vs++
			}
			ve := vs + c + 1
			for ve < len(p) && (p[ve] == ' ' || p[ve] == '\t') {
				ve++
			}
			v.viaFrom, v.viaTo = vs, ve
		case request.HeaderIs(name, "CSeq", 0):
			sp := bytes.LastIndexAny(val, " \t")
			if sp < 0 {
				return v, nil, false
			}
			haveCSeq = true
			method := val[sp+1:]
			v.cancel = string(method) == "CANCEL"
			v.bye = string(method) == "BYE"
		case request.HeaderIs(name, "Call-ID", 'i'):
			haveCallID = len(val) > 0
		case request.HeaderIs(name, "To", 't'):
			v.toFrom, v.toTo = start, start+len(line)
		case request.HeaderIs(name, "Content-Length", 'l'):
			n, err := strconv.Atoi(string(val))
			if err != nil || n < 0 {
				return v, nil, false
			}
			cl = n
		case request.HeaderIs(name, "Session-Expires", 'x'):
			s, _, _ := strings.Cut(string(val), ";")
			if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n > 0 {
				v.se = time.Duration(n) * time.Second
			}
		}
	}
	return v, nil, false
}

// paramValue returns the value of ;name=value in a header value (outside
// quotes and <>), nil when absent or without a value.
func paramValue(v []byte, name string) []byte {
	val, _ := request.FindParam(v, name)
	return val
}

// fastResponse handles a response on one of our client transactions
// from a raw scan, without sipgo's parser; false when it is not one (a
// probe reply, a stray or late response, an unusual form): the caller
// then takes the full path.
func (b *Balancer) fastResponse(in inbound) bool {
	v, branch, ok := scanResponse(in.data)
	if !ok || bytes.HasPrefix(branch, b.probePrefixB) || !bytes.HasPrefix(branch, b.branchPrefixB) {
		return false
	}
	ct, found := b.ctx.getBytes(branch)
	if !found {
		return false
	}
	b.proxyResponse(ct, &v)
	return true
}
