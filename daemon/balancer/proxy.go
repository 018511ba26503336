package balancer

import (
	"github.com/sipedge/sipedge/daemon/balancer/request"

	"github.com/emiago/sipgo/sip"
)

// handle is one worker's processing of one message.
func (b *Balancer) handle(in inbound) {
	defer func() {
		if r := recover(); r != nil {
			b.stats.Panics.Add(1)
			b.log.Error("message handling panicked", "panic", r, "src", in.src)
		}
	}()
	b.stats.Received.Add(1)
	if len(in.data) > b.opt.MaxMessageBytes {
		b.stats.TooLarge.Add(1)
		b.refuseLarge(in)
		return
	}
	if rawRequestStart(in.data) {
		if b.fastAck(in) || b.fastInvite(in) || b.fastInDialog(in) {
			return
		}
		rq, ref := request.Parse(b.parser, in.data, in.src, in.conn != nil, b.reqCfg)
		if ref != nil {
			b.stats.Malformed.Add(1)
			if ref.Code != 0 && !rq.Empty() {
				b.replyStateless(in, &rq, ref.Code, ref.Reason, ref.Extra)
			}
			return
		}
		b.onRequest(in, &rq)
		return
	}
	if !b.opt.FullPath && b.fastResponse(in) {
		return
	}
	msg, err := b.respParser.ParseSIP(in.data)
	res, ok := msg.(*sip.Response)
	if err != nil || !ok || !validResponse(res) {
		b.stats.Malformed.Add(1)
		return
	}
	b.onResponse(in, res)
}

// refuseLarge answers 513 when the oversized message's headers can be
// read, else drops it.
func (b *Balancer) refuseLarge(in inbound) {
	if !rawRequestStart(in.data) {
		return
	}
	msg, _, err := b.parser.ParseHeaders(in.data, false)
	req, ok := msg.(*sip.Request)
	if err != nil || !ok || request.Validate(req) != nil || req.Method == sip.ACK {
		return
	}
	rq := request.FromParsed(req, in.src, in.conn != nil, b.reqCfg)
	b.replyStateless(in, &rq, 513, "Message Too Large", "")
}

// replyStateless answers a request with a response of our own, keeping
// no state: its To tag (when it had none) derived from the Call-ID, so
// that its ACK is known from a raw scan (statelessTag).
func (b *Balancer) replyStateless(in inbound, rq *request.Request, code int, reason, extra string) {
	r, _ := rq.Responder()
	if c := rq.CallID(); c != nil && r.ToTag != "" {
		r.ToTag = statelessTag(c)
	}
	if err := b.send(in.lis.transport, rq.ReplyAddr(), r.Response(code, reason, extra), in.conn); err != nil {
		b.log.Debug("reply", "err", err)
	}
	if code >= 400 {
		b.stats.countReply(code)
	}
}

// onRequest is the full path's handling of a request that passed intake
// (request.Parse); it reads the request only through its view.
func (b *Balancer) onRequest(in inbound, rq *request.Request) {
	method := rq.Method()
	switch method {
	case sip.ACK:
		b.onAck(in, rq)
		return
	case sip.CANCEL:
		b.onCancel(in, rq)
		return
	}
	key := string(rq.AppendTxKey(nil))
	if st, ok := b.stx.get(key); ok {
		b.absorb(st)
		return
	}
	if !b.roomFor(capTransactions, in.trusted) {
		b.replyStateless(in, rq, 503, "Service Unavailable", b.retryAfter())
		return
	}
	st := &serverTx{b: b, key: key, method: method, callID: string(rq.CallID()), lis: in.lis, conn: in.conn,
		dst: rq.ReplyAddr(), rq: *rq, trusted: in.trusted}
	if method == sip.INVITE {
		// Other requests build their responder only when the balancer
		// itself answers (rare): most are answered by the Core.
		r, _ := rq.Responder()
		st.hdr, st.toLine, st.toTag = r.Hdr, r.ToLine, r.ToTag
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	b.stx.put(key, st)
	if method == sip.INVITE {
		defer b.trying(st, st.responder())
	}
	us, user := rq.AddressedToUs()

	// Max-Forwards (RFC 3261 16.3 step 3 / 16.6 step 3): decremented, or
	// added, as it is forwarded (request.AppendForward).
	if mf, ok := rq.MaxForwards(); ok && mf == 0 {
		if method == sip.OPTIONS && us {
			b.finish(st, 200, "OK", "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n")
			return
		}
		b.finish(st, 483, "Too Many Hops", "")
		return
	}

	toTag, hasToTag := rq.ToTag()
	if rq.Routed() || hasToTag {
		// Pre-routed or in-dialog: loose routing to the next hop, for
		// an untrusted source only along a dialog we know (relay.go).
		if !st.trusted && !hasToTag {
			b.refuse(refusedRoute)
			b.finish(st, 403, "Forbidden", "")
			return
		}
		tp, dst, host, err := b.requestHop(rq, st.callID)
		fromTag := rq.FromTag()
		if !st.trusted {
			m, code, reason := b.untrustedInDialog([]byte(st.callID), fromTag, toTag, tp, dst, host)
			if code != 0 {
				b.finish(st, code, reason, "")
				return
			}
			if err != nil { // the name the dialog recorded: its next hop
				tp, dst, err = m.tp, m.dst, nil
			}
		}
		if err != nil || b.isLocal(dst) {
			b.finish(st, 404, "Not Found", "")
			return
		}
		switch method {
		case sip.BYE:
			b.dialogs.endBye(st.callID, fromTag, toTag)
		case sip.INVITE, sip.UPDATE:
			st.refresh = b.dialogs.match([]byte(st.callID), fromTag, toTag).side == sideCaller
			fallthrough
		default:
			b.dialogs.touch(st.callID, fromTag, toTag)
		}
		b.attempt(st, nil, tp, dst)
		return
	}
	if method == sip.INVITE {
		st.callerTag = string(rq.FromTag())
	}
	if method == sip.OPTIONS && us && !user {
		b.finish(st, 200, "OK", "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n")
		return
	}
	b.routeNew(st)
}

// routeNew sends a new call or out-of-dialog request to a Core it
// chooses; st.mu held.
func (b *Balancer) routeNew(st *serverTx) {
	if b.secure(st) && !b.pool.hasTransport("tls") {
		// A sips: request goes over TLS on every hop (RFC 3261 26.2.2):
		// with no tls: Core this box cannot take it.
		b.finish(st, 416, "Unsupported URI Scheme", "")
		return
	}
	c, full := b.admitNew(st)
	if c == nil {
		if !full {
			b.stats.NoCore.Add(1)
		}
		b.finish(st, 503, "Service Unavailable", b.retryAfter())
		return
	}
	st.toCore = true
	switch st.method {
	case sip.INVITE, sip.SUBSCRIBE, sip.REFER, sip.NOTIFY:
		st.recordRoute = true
	}
	b.attempt(st, c, c.transport, c.addr)
}

// admitNew picks the Core for a new request; for an INVITE it also checks
// the dialog cap and enters the dialog, as one step under admitMu (two
// workers cannot both take the table's last place). full: refused at
// the cap rather than for want of a Core.
func (b *Balancer) admitNew(st *serverTx) (c *Core, full bool) {
	if st.method != sip.INVITE {
		return b.pickCore(st), false
	}
	b.admitMu.Lock()
	defer b.admitMu.Unlock()
	if !b.roomFor(capDialogs, st.trusted) {
		return nil, true
	}
	if c = b.pickCore(st); c == nil {
		return nil, false
	}
	st.invite = true
	b.stats.Calls.Add(1)
	b.dialogs.create(st.callID, st.callerTag, c)
	return c, false
}
