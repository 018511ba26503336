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
