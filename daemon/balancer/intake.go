package balancer

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// leanHeaderParsers is the set of headers the proxy reads; every other
// header is kept as raw text and forwarded untouched, which spares the
// parser most of its work (Contact, Content-Type, ...).
func leanHeaderParsers() map[string]sip.HeaderParser {
	all := sip.DefaultHeadersParser()
	m := map[string]sip.HeaderParser{}
	// From is forwarded as raw text: the proxy only needs it present.
	for _, k := range []string{"via", "v", "to", "t", "call-id", "i", "cseq",
		"max-forwards", "content-length", "l", "route", "record-route"} {
		m[k] = all[k]
	}
	return m
}

// leanResponseParsers is the smaller set responses need: the top Via
// (popped), To (tag for our ACK), Call-ID, CSeq and Content-Length.
func leanResponseParsers() map[string]sip.HeaderParser {
	all := sip.DefaultHeadersParser()
	m := map[string]sip.HeaderParser{}
	for _, k := range []string{"via", "v", "to", "t", "call-id", "i", "cseq", "content-length", "l"} {
		m[k] = all[k]
	}
	return m
}

// intakeError is a request refused at the door: code 0 means drop.
type intakeError struct {
	code   int
	reason string
}

func (e *intakeError) Error() string { return fmt.Sprintf("%d %s", e.code, e.reason) }

// validateRequest checks what the proxy relies on before routing: a top
// Via to answer to (else the request is dropped), From, To, Call-ID and a
// CSeq matching the method (else 400), a SIP Request-URI.
func validateRequest(req *sip.Request) *intakeError {
	via := req.Via()
	if via == nil || via.Host == "" {
		return &intakeError{0, "no usable Via"}
	}
	switch {
	case fromHeader(req) == nil:
		return &intakeError{400, "Missing From"}
	case req.To() == nil:
		return &intakeError{400, "Missing To"}
	case req.CallID() == nil || *req.CallID() == "":
		return &intakeError{400, "Missing Call-ID"}
	case req.CSeq() == nil:
		return &intakeError{400, "Missing CSeq"}
	case req.CSeq().MethodName != req.Method:
		return &intakeError{400, "CSeq Method Mismatch"}
	case req.Recipient.Host == "" && req.Recipient.Raw() == "":
		return &intakeError{400, "Bad Request-URI"}
	}
	switch strings.ToLower(req.Recipient.Scheme) {
	case "sip", "":
	case "sips":
		return &intakeError{416, "Unsupported URI Scheme"}
	default:
		if req.Method != sip.ACK && req.Method != sip.CANCEL {
			return &intakeError{416, "Unsupported URI Scheme"}
		}
	}
	return nil
}

// validResponse checks what response routing needs.
func validResponse(res *sip.Response) bool {
	return res.Via() != nil && res.CSeq() != nil && res.CallID() != nil &&
		res.StatusCode >= 100 && res.StatusCode < 700
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

// rawRequestStart tells whether data starts like a request (not a
// response), to decide between answering and dropping.
func rawRequestStart(data []byte) bool {
	return !bytes.HasPrefix(data, []byte("SIP/"))
}

// fromHeader returns the From header as parsed or raw (long or compact
// name), nil when absent.
func fromHeader(m interface{ GetHeader(string) sip.Header }) sip.Header {
	if h := m.GetHeader("from"); h != nil {
		return h
	}
	return m.GetHeader("f")
}

// maxForwards reads a Max-Forwards value from its header line (colon:
// the index of ':'): 1*DIGIT between SIP whitespace (SP, HTAB), and its
// byte range in line. ok is false for anything else (a vertical tab, a
// no-break space: trimmed one way and located another, they turned
// "Max-Forwards:\v5" into 45 once), which intake answers 400.
func maxForwards(line []byte, colon int) (n, from, to int, ok bool) {
	from, to = colon+1, len(line)
	for from < to && (line[from] == ' ' || line[from] == '\t') {
		from++
	}
	for to > from && (line[to-1] == ' ' || line[to-1] == '\t') {
		to--
	}
	if to == from || to-from > 9 {
		return 0, 0, 0, false
	}
	for _, c := range line[from:to] {
		if c < '0' || c > '9' {
			return 0, 0, 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, from, to, true
}

// badMaxForwards reports whether a request's Max-Forwards (any of them)
// is not plain digits, or is folded over lines.
func badMaxForwards(p []byte) bool {
	i := bytes.IndexByte(p, '\n')
	if i < 0 {
		return false
	}
	prevMF := false
	for i++; i < len(p); {
		h, last, ok := nextHeader(p, i)
		if !ok || last {
			return false
		}
		i = h.next
		if h.folded() {
			if prevMF {
				return true
			}
			continue
		}
		prevMF = h.colon > 0 && hdrIs(h.name, "Max-Forwards", 0)
		if _, _, _, ok := maxForwards(h.line, h.colon); prevMF && !ok {
			return true
		}
	}
	return false
}

// checkLimits applies the intake limits beyond the size: the number of
// header fields (400) and the Request-URI's length (414), read from the
// start line as received.
func (b *Balancer) checkLimits(data []byte, req *sip.Request) *intakeError {
	if n := len(req.Headers()); n > b.opt.MaxHeaders {
		return &intakeError{400, "Too Many Headers"}
	}
	if badMaxForwards(data) {
		return &intakeError{400, "Bad Max-Forwards"}
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
		if len(uri) > b.opt.MaxURIBytes {
			return &intakeError{414, "Request-URI Too Long"}
		}
	}
	return nil
}

// screened carries out a Screen verdict other than accept: a request
// refused with a code is answered statelessly when its headers can be
// read (never an ACK); everything else is dropped, and over TCP its
// connection closed (a banned source, a scanner).
func (b *Balancer) screened(in inbound, v Verdict) {
	if v.Drop && in.conn != nil {
		in.conn.screenedOut = true // on its reader: see streamEnded
		b.dropConn(in.conn)
		return
	}
	if v.Code == 0 || !rawRequestStart(in.data) || len(in.data) > b.opt.MaxMessageBytes {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			b.stats.Panics.Add(1)
			b.log.Error("screened message panicked", "panic", r, "src", in.src)
		}
	}()
	msg, _, err := b.parser.ParseHeaders(in.data, false)
	req, ok := msg.(*sip.Request)
	if err != nil || !ok || validateRequest(req) != nil || req.Method == sip.ACK {
		return
	}
	b.replyStateless(in, req, v.Code, v.Reason, "")
}
