package request

import (
	"bytes"
	"strconv"

	"github.com/emiago/sipgo/sip"
)

// Our own responses (RFC 3261 8.2.6, 16.7 step 10's 100 Trying, our
// 4xx-6xx): the request's Via lines (the top one with received and
// rport), From, Call-ID, CSeq and To, with a To tag of ours when the
// request had none. The raw backing cuts the lines from the bytes; the
// parsed one renders its headers.

// Responder holds what our own responses to a request need.
type Responder struct {
	Hdr    string // Via lines, From, Call-ID, CSeq, CRLF each
	ToLine string // without CRLF
	ToTag  string // our tag ("": the request had one)
}

// Responder returns what our own responses to r need; false when the
// raw backing cannot cut them (more than eight Via lines).
func (r *Request) Responder() (Responder, bool) {
	if r.req != nil {
		return ParsedResponder(r.req, nil), true
	}
	return r.rawResponder()
}

// ParsedResponder is a parsed request's Responder, leaving out the Via
// header own (ours, once the request has been forwarded by the
// balancer's older code path).
func ParsedResponder(req *sip.Request, own *sip.ViaHeader) Responder {
	buf := BufPool.Get().(*bytes.Buffer)
	defer BufPool.Put(buf)
	buf.Reset()
	for _, h := range req.Headers() {
		if v, ok := h.(*sip.ViaHeader); ok && (own == nil || v != own) {
			HeaderLine(buf, h)
		}
	}
	HeaderLine(buf, FromHeader(req))
	if c := req.CallID(); c != nil {
		HeaderLine(buf, c)
	}
	if c := req.CSeq(); c != nil {
		HeaderLine(buf, c)
	}
	n := buf.Len()
	to := req.To()
	if to != nil {
		WriteHeader(buf, to)
	}
	all := buf.String() // one string for both
	res := Responder{Hdr: all[:n], ToLine: all[n:]}
	if to != nil && !to.Params.Has("tag") {
		res.ToTag = res.tag()
	}
	return res
}

func (r *Request) rawResponder() (Responder, bool) {
	p := r.raw.p
	var vias [8]lineCut
	nvia := 0
	var from, callID, cseq, to lineCut
	for i := r.raw.eol + 1; ; {
		h, last, ok := NextHeader(p, i)
		if !ok || last {
			break
		}
		i = h.Next
		if h.Colon <= 0 {
			continue
		}
		line := lineCut{h.Start, h.Start + len(bytes.TrimRight(h.Line, " \t"))} // without its CRLF
		switch name := h.Name; {
		case HeaderIs(name, "Via", 'v'):
			if nvia == len(vias) {
				return Responder{}, false
			}
			vias[nvia] = line
			nvia++
		case from.to == 0 && HeaderIs(name, "From", 'f'):
			from = line
		case callID.to == 0 && HeaderIs(name, "Call-ID", 'i'):
			callID = line
		case cseq.to == 0 && HeaderIs(name, "CSeq", 0):
			cseq = line
		case to.to == 0 && HeaderIs(name, "To", 't'):
			to = line
		}
	}
	var arr [1024]byte
	buf := arr[:0]
	for _, l := range vias[:nvia] {
		buf = append(r.AppendRange(buf, l.from, l.to), "\r\n"...)
	}
	for _, l := range [...]lineCut{from, callID, cseq} {
		buf = append(r.AppendRange(buf, l.from, l.to), "\r\n"...)
	}
	n := len(buf)
	buf = r.AppendRange(buf, to.from, to.to)
	all := string(buf)
	res := Responder{Hdr: all[:n], ToLine: all[n:]}
	if !r.raw.toTag {
		res.ToTag = res.tag()
	}
	return res, true
}

// tag is our To tag: derived from the request, so that a retransmitted
// request gets the same.
func (res Responder) tag() string {
	var tag [16]byte
	return string(strconv.AppendUint(append(tag[:0], "sb"...), Mix64(FNV1a(FNV1a(FNVOffset64, res.ToLine), res.Hdr)), 36))
}

// Response is our response with code and reason, extra header lines
// (CRLF each) and no body.
func (res Responder) Response(code int, reason, extra string) []byte {
	var buf bytes.Buffer
	buf.Grow(len(res.Hdr) + len(res.ToLine) + len(extra) + 96)
	buf.WriteString("SIP/2.0 ")
	buf.WriteString(strconv.Itoa(code))
	buf.WriteByte(' ')
	buf.WriteString(reason)
	buf.WriteString("\r\n")
	buf.WriteString(res.Hdr)
	if res.ToLine != "" {
		buf.WriteString(res.ToLine)
		if code > 100 && res.ToTag != "" {
			buf.WriteString(";tag=")
			buf.WriteString(res.ToTag)
		}
		buf.WriteString("\r\n")
	}
	buf.WriteString(extra)
	buf.WriteString("Server: sipedge\r\nContent-Length: 0\r\n\r\n")
	return buf.Bytes()
}

// FNV-1a 64 (with a splitmix64 finaliser): our To tags and branches
// derived from a request, and the balancer's Call-ID hashing.
const (
	FNVOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// FNV1a continues an FNV-1a 64 hash h over s: chained over several parts
// it hashes their concatenation, without building it.
func FNV1a[S string | []byte](h uint64, s S) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime64
	}
	return h
}

// Mix64 finalises an FNV hash: its low bits mix poorly for similar keys
// (splitmix64).
func Mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
