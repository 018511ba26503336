package request

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// The full path's reading: sipgo's parse with a lean header set, then
// what the proxy relies on checked before anything routes it.

// LeanHeaderParsers is the set of headers the proxy reads; every other
// header is kept as raw text and forwarded untouched, which spares the
// parser most of its work (Contact, Content-Type, ...).
func LeanHeaderParsers() map[string]sip.HeaderParser {
	all := sip.DefaultHeadersParser()
	m := map[string]sip.HeaderParser{}
	// From is forwarded as raw text: the proxy only needs it present.
	for _, k := range []string{"via", "v", "to", "t", "call-id", "i", "cseq",
		"max-forwards", "content-length", "l", "route", "record-route"} {
		m[k] = all[k]
	}
	return m
}

// NewParser is the full path's parser (LeanHeaderParsers, messages up
// to 65,535 bytes).
func NewParser() *sip.Parser {
	p := sip.NewParser(sip.WithHeadersParsers(LeanHeaderParsers()))
	p.MaxMessageLength = 65535
	return p
}

// Refusal is a request refused at the door: Code 0 means drop.
type Refusal struct {
	Code   int
	Reason string
	Extra  string // header lines for the answer (CRLF each)
}

func (e *Refusal) Error() string { return fmt.Sprintf("%d %s", e.Code, e.Reason) }

// Parse reads a request for the full path: sipgo's parse, then
// Validate, the intake limits and checkProxy. On a refusal with a Code
// (0: drop it) r is usable for an answer of our own: parsed as far as
// sipgo got, or read leniently from the bytes when sipgo stopped before
// the Via (fallback).
func Parse(p *sip.Parser, data []byte, src netip.AddrPort, stream bool, cfg *Config) (r Request, ref *Refusal) {
	msg, err := p.ParseSIP(data)
	req, _ := msg.(*sip.Request)
	if req != nil {
		restoreMethod(req, data)
		r = FromParsed(req, src, stream, cfg)
	}
	if err != nil {
		// Answered from a lenient read of the bytes (fallback), which
		// has every line of the request, not just those sipgo read
		// before it stopped; else from what it read, when that holds a
		// Via (over TCP, say).
		code, reason := 400, malformedReason(err)
		if fb, ok := fallback(data, src, cfg); ok && !stream {
			if reason == "Bad Request" {
				code, reason = fallbackCode(data)
			}
			return fb, &Refusal{Code: code, Reason: reason}
		}
		if req == nil || req.Via() == nil || req.Via().Host == "" || req.Method == sip.ACK {
			return Request{}, &Refusal{Code: 0, Reason: "malformed"}
		}
		return r, &Refusal{Code: code, Reason: reason}
	}
	if req == nil {
		// Bytes the raw scan took for a request start that sipgo reads
		// as a response ("SIP 0 ..."): not ours to answer.
		return Request{}, &Refusal{Code: 0, Reason: "not a request"}
	}
	ref = Validate(req)
	if ref == nil {
		ref = checkLimits(data, req, cfg)
	}
	if ref == nil {
		ref = checkProxy(req)
	}
	if ref != nil && req.Method == sip.ACK {
		ref.Code = 0 // an ACK gets no answer
	}
	return r, ref
}

// Validate checks what the proxy relies on before routing: a top Via to
// answer to (else the request is dropped), From, To, Call-ID and a CSeq
// matching the method (else 400), a SIP Request-URI (416).
func Validate(req *sip.Request) *Refusal {
	via := req.Via()
	if via == nil || via.Host == "" {
		return &Refusal{Code: 0, Reason: "no usable Via"}
	}
	switch {
	case FromHeader(req) == nil:
		return &Refusal{Code: 400, Reason: "Missing From"}
	case req.To() == nil:
		return &Refusal{Code: 400, Reason: "Missing To"}
	case req.CallID() == nil || *req.CallID() == "":
		return &Refusal{Code: 400, Reason: "Missing Call-ID"}
	case req.CSeq() == nil:
		return &Refusal{Code: 400, Reason: "Missing CSeq"}
	case sip.RequestMethod(strings.TrimSpace(string(req.CSeq().MethodName))) != req.Method: // sipgo keeps a second SP
		return &Refusal{Code: 400, Reason: "CSeq Method Mismatch"}
	case req.Recipient.Host == "" && req.Recipient.Raw() == "":
		return &Refusal{Code: 400, Reason: "Bad Request-URI"}
	}
	switch strings.ToLower(req.Recipient.Scheme) {
	case "sip", "":
	case "sips":
		return &Refusal{Code: 416, Reason: "Unsupported URI Scheme"}
	default:
		if req.Method != sip.ACK && req.Method != sip.CANCEL {
			return &Refusal{Code: 416, Reason: "Unsupported URI Scheme"}
		}
	}
	return nil
}

// checkProxy applies what RFC 3261 16.3 asks of a proxy beyond a
// request's syntax: a SIP version it speaks (505, RFC 4475 3.1.2.16), a
// Request-URI without headers (400: "?Route=" would smuggle a route to
// the Core, 3.1.2.11; RFC 3261 19.1.1 allows none there), and no
// Proxy-Require, since the balancer supports no extension a proxy must
// (420 with Unsupported, 16.3 step 5, 3.3.5).
func checkProxy(req *sip.Request) *Refusal {
	switch {
	case req.SipVersion != "SIP/2.0":
		return &Refusal{Code: 505, Reason: "Version Not Supported"}
	case len(req.Recipient.Headers) > 0:
		return &Refusal{Code: 400, Reason: "Headers In Request-URI"}
	}
	if req.Method == sip.ACK || req.Method == sip.CANCEL {
		return nil
	}
	var unsupported []string
	for _, h := range req.GetHeaders("proxy-require") {
		unsupported = append(unsupported, h.Value())
	}
	if len(unsupported) > 0 {
		return &Refusal{Code: 420, Reason: "Bad Extension", Extra: "Unsupported: " + strings.Join(unsupported, ", ") + "\r\n"}
	}
	return nil
}

// malformedReason maps a parse error to a 400 reason phrase.
func malformedReason(err error) string {
	switch {
	case errors.Is(err, sip.ErrParseReadBodyIncomplete):
		return "Bad Content-Length"
	case errors.Is(err, sip.ErrMessageTooLarge):
		return "Message Too Large"
	}
	return "Bad Request"
}

// checkLimits applies the intake limits beyond the size: the number of
// header fields (400), Max-Forwards (400) and the Request-URI's length
// (414), read from the start line as received.
func checkLimits(data []byte, req *sip.Request, cfg *Config) *Refusal {
	if n := len(req.Headers()); n > cfg.MaxHeaders {
		return &Refusal{Code: 400, Reason: "Too Many Headers"}
	}
	if badMaxForwards(data) {
		return &Refusal{Code: 400, Reason: "Bad Max-Forwards"}
	}
	if name := repeatedSingle(data); name != "" {
		return &Refusal{Code: 400, Reason: "Repeated " + name}
	}
	line := data
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	// "METHOD SP Request-URI SP SIP/2.0"
	if i := bytes.IndexByte(line, ' '); i >= 0 {
		uri := line[i+1:]
		if j := bytes.LastIndexByte(uri, ' '); j >= 0 {
			uri = uri[:j]
		}
		if len(uri) > cfg.MaxURIBytes {
			return &Refusal{Code: 414, Reason: "Request-URI Too Long"}
		}
	}
	return nil
}

// restoreMethod puts back the method as the start line writes it:
// sipgo upper-cases it, but method names are case-sensitive (RFC 3261
// 7.1), and an extension method in lower case must be forwarded, and
// matched with its CSeq, as written (RFC 4475 3.1.1.2).
func restoreMethod(req *sip.Request, data []byte) {
	sp := bytes.IndexByte(data, ' ')
	if sp <= 0 || string(data[:sp]) == string(req.Method) || !strings.EqualFold(string(data[:sp]), string(req.Method)) {
		return
	}
	req.Method = sip.RequestMethod(data[:sp])
}

// singleHeaders are the headers a request carries once, with one value
// (RFC 3261 7.3.1, 20): two Content-Length values make its framing
// ambiguous (RFC 4475 3.1.2.11), two of the others leave the proxy and
// the Core free to read different ones (3.1.2.14). sipgo keeps the
// first; the request is refused 400 instead.
var singleHeaders = [...]struct {
	long  string
	short byte
	comma bool // a comma makes two values
}{
	{"Content-Length", 'l', true}, {"Max-Forwards", 0, true}, {"CSeq", 0, true},
	{"Call-ID", 'i', true}, {"From", 'f', false}, {"To", 't', false},
}

// repeatedSingle is the name of the first single-value header that
// comes twice, or with two values, in a request's headers ("": none).
func repeatedSingle(p []byte) string {
	var seen [len(singleHeaders)]bool
	i := bytes.IndexByte(p, '\n')
	if i < 0 {
		return ""
	}
	for i++; i < len(p); {
		h, last, ok := NextHeader(p, i)
		if !ok || last {
			return ""
		}
		i = h.Next
		if h.Colon <= 0 || h.Folded() {
			continue
		}
		for k, s := range singleHeaders {
			if !HeaderIs(h.Name, s.long, s.short) {
				continue
			}
			if seen[k] || s.comma && bytes.IndexByte(h.Value, ',') >= 0 {
				return s.long
			}
			seen[k] = true
		}
	}
	return ""
}

// fallback is a view good for an answer of our own only (Responder,
// ReplyAddr, CallID), read leniently from the bytes of a request sipgo
// could not parse before its Via (RFC 4475 3.1.2: such a request gets
// 400, not silence). False when there is no plain top Via to answer to
// or the request is an ACK. The answer goes to the source address, as
// every answer does.
func fallback(p []byte, src netip.AddrPort, cfg *Config) (Request, bool) {
	req := Request{cfg: cfg, src: src}
	r := &req.raw
	r.p, r.mf, r.rportAt, r.recvAt = p, -1, -1, -1
	eol := bytes.IndexByte(p, '\n')
	if eol < 0 || bytes.HasPrefix(p, []byte("ACK ")) {
		return req, false
	}
	r.eol = eol
	via := false
	for i := eol + 1; ; {
		h, last, ok := NextHeader(p, i)
		if !ok || last {
			break
		}
		i = h.Next
		switch {
		case h.Colon <= 0 || h.Folded():
		case HeaderIs(h.Name, "Via", 'v') && !via:
			via = true
			first, _, _ := bytes.Cut(h.Value, []byte{','})
			if !viaProtocol(first) || bytes.IndexByte(first, '"') >= 0 || !r.scanVia(p, first, src) && !r.lenientVia(p, first, src) {
				return req, false
			}
		case HeaderIs(h.Name, "Call-ID", 'i') && r.callID == nil:
			r.callID = h.Value
		}
	}
	return req, via && r.sentBy != nil
}

// lenientVia is scanVia for a top Via without an RFC 3261 branch: its
// sent-by and rport, for an answer.
func (r *raw) lenientVia(p, first []byte, src netip.AddrPort) bool {
	var plain, rport bool
	if r.sentBy, r.viaPort, rport, plain = ViaSentBy(first); !plain {
		return false
	}
	if rport {
		if v, end, _, odd := exactParam(first, "rport"); !odd && v == nil {
			r.rportAt = cap(p) - cap(first) + end
		}
	}
	if !sentByIs(r.sentBy, src.Addr()) {
		r.recvAt = cap(p) - cap(first) + len(bytes.TrimRight(first, " \t"))
	}
	return true
}

// fallbackCode is the answer to a request sipgo could not parse: 416
// for a Request-URI scheme the balancer does not route (RFC 4475
// 3.3.3), else 400.
func fallbackCode(p []byte) (int, string) {
	line, _, _ := bytes.Cut(p, []byte{'\n'})
	f := bytes.Fields(line)
	if len(f) == 3 {
		if scheme, _, ok := bytes.Cut(f[1], []byte{':'}); ok && uriScheme(scheme) && !bytes.EqualFold(scheme, []byte("sip")) && !bytes.EqualFold(scheme, []byte("sips")) {
			return 416, "Unsupported URI Scheme"
		}
	}
	return 400, "Bad Request"
}

// uriScheme reports an RFC 3986 scheme: a letter, then letters, digits,
// '+', '-', '.' ("<sip" is not one: RFC 4475 3.1.2.7 wants 400).
func uriScheme(s []byte) bool {
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return len(s) > 0
}
