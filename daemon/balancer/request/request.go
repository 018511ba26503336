package request

import (
	"bytes"
	"net/netip"

	"github.com/emiago/sipgo/sip"
)

// Config is what a view needs of the balancer.
type Config struct {
	// Local reports whether an address is one of the balancer's
	// listeners: our own Route entries, a request addressed to us.
	Local func(netip.AddrPort) bool
	// MaxHeaders and MaxURIBytes are the intake limits (400, 414); the
	// raw scan declines what goes past them, so that the full path
	// answers.
	MaxHeaders  int
	MaxURIBytes int
}

func (c *Config) local(a netip.AddrPort) bool { return c.Local != nil && c.Local(a) }

// Request is one request as the proxy reads it: backed by its raw
// bytes (Scan) or by a parsed *sip.Request (Parse, FromParsed). The
// zero value is not usable.
type Request struct {
	cfg    *Config
	src    netip.AddrPort // where it came from
	stream bool           // over TCP: responses go back on the connection
	req    *sip.Request   // the parsed backing; nil for the raw one
	raw    raw            // the raw backing, when req is nil
	tidied bool           // parsed: Max-Forwards and our Routes done (tidy)
}

// raw is what the raw backing reads of a request from its bytes: enough
// to key its transaction, find its next hop and forward it.
type raw struct {
	p       []byte
	method  []byte // as in the start line
	eol     int    // index of the start line's '\n'
	end     int    // where the body starts (after the blank line)
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

	// What fillReceived adds to the top Via (RFC 3261 18.2.1, RFC 3581
	// 4), as insertions into p: the source port after a valueless
	// rport, and received when sent-by is not the source address. -1:
	// none.
	rportAt, recvAt int
}

// lineCut is a header line's byte range, CRLF included.
type lineCut struct{ from, to int }

// FromParsed is the view of a request sipgo parsed, received from src
// (stream: over TCP); its top Via gets received and rport filled.
func FromParsed(req *sip.Request, src netip.AddrPort, stream bool, cfg *Config) Request {
	r := Request{cfg: cfg, src: src, stream: stream, req: req}
	if via := req.Via(); via != nil {
		fillReceived(via, src)
	}
	return r
}

// Raw reports whether the raw bytes back r.
func (r *Request) Raw() bool { return r.req == nil }

// Parsed is the parsed request; nil for the raw backing.
func (r *Request) Parsed() *sip.Request { return r.req }

// Bytes is the request as received (the raw backing; nil otherwise).
func (r *Request) Bytes() []byte { return r.raw.p }

// Source is the address the request came from.
func (r *Request) Source() netip.AddrPort { return r.src }

// knownMethods are the methods named without a string made per request.
var knownMethods = [...]sip.RequestMethod{sip.INVITE, sip.ACK, sip.CANCEL, sip.BYE, sip.REGISTER,
	sip.OPTIONS, sip.SUBSCRIBE, sip.NOTIFY, sip.REFER, sip.INFO, sip.MESSAGE, sip.PRACK, sip.UPDATE, sip.PUBLISH}

// Method is the request's method.
func (r *Request) Method() sip.RequestMethod {
	if r.req != nil {
		return r.req.Method
	}
	for _, k := range knownMethods {
		if string(r.raw.method) == string(k) {
			return k
		}
	}
	return sip.RequestMethod(r.raw.method)
}

// Empty reports the zero Request (none kept).
func (r *Request) Empty() bool { return r.req == nil && r.raw.p == nil }

// CallID is the Call-ID's value (nil: none, on a request Parse refused).
func (r *Request) CallID() []byte {
	if r.req != nil {
		if c := r.req.CallID(); c != nil {
			return []byte(*c)
		}
		return nil
	}
	return r.raw.callID
}

// CSeq is the CSeq number.
func (r *Request) CSeq() uint32 {
	if r.req != nil {
		if c := r.req.CSeq(); c != nil {
			return c.SeqNo
		}
		return 0
	}
	return r.raw.cseq
}

// FromTag is From's tag (nil: none).
func (r *Request) FromTag() []byte {
	if r.req != nil {
		return tagOf(FromHeader(r.req))
	}
	return r.raw.fromTag
}

// ToTag is To's tag and whether it has one (an in-dialog request).
func (r *Request) ToTag() ([]byte, bool) {
	if r.req != nil {
		to := r.req.To()
		if to == nil {
			return nil, false
		}
		t, ok := to.Params.Get("tag")
		return []byte(t), ok
	}
	return r.raw.toTagV, r.raw.toTag
}

// RequestURI is the Request-URI as written.
func (r *Request) RequestURI() []byte {
	if r.req != nil {
		var b bytes.Buffer
		writeURI(&b, &r.req.Recipient)
		return b.Bytes()
	}
	return r.raw.ruri
}

// FromHeader returns the From header as parsed or raw (long or compact
// name), nil when absent.
func FromHeader(m interface{ GetHeader(string) sip.Header }) sip.Header {
	if h := m.GetHeader("from"); h != nil {
		return h
	}
	return m.GetHeader("f")
}

// tagOf is the tag parameter of a From or To header (raw or parsed),
// nil when it has none.
func tagOf(h sip.Header) []byte {
	if h == nil {
		return nil
	}
	t, _ := FindParam([]byte(h.Value()), "tag")
	return t
}
