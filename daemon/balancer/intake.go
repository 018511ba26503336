package balancer

import (
	"bytes"
	"github.com/sipedge/sipedge/daemon/balancer/request"

	"github.com/emiago/sipgo/sip"
)

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

// validResponse checks what response routing needs.
func validResponse(res *sip.Response) bool {
	return res.Via() != nil && res.CSeq() != nil && res.CallID() != nil &&
		res.StatusCode >= 100 && res.StatusCode < 700
}

// rawRequestStart tells whether data starts like a request (not a
// response), to decide between answering and dropping.
func rawRequestStart(data []byte) bool {
	return !bytes.HasPrefix(data, []byte("SIP/"))
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
	if err != nil || !ok || request.Validate(req) != nil || req.Method == sip.ACK {
		return
	}
	rq := request.FromParsed(req, in.src, in.conn != nil, b.reqCfg)
	b.replyStateless(in, &rq, v.Code, v.Reason, "")
}
