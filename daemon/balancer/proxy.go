package balancer

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// fillReceived adds received and rport to the top Via (RFC 3261 18.2.1,
// RFC 3581 4).
func fillReceived(via *sip.ViaHeader, src netip.AddrPort) {
	if via.Params == nil {
		via.Params = sip.NewParams()
	}
	if a, err := netip.ParseAddr(via.Host); err != nil || a.Unmap() != src.Addr() {
		via.Params.Add("received", src.Addr().String())
	}
	if v, ok := via.Params.Get("rport"); ok && v == "" {
		via.Params.Add("rport", strconv.Itoa(int(src.Port())))
	}
}

// replyAddr is where responses to a request go: the source address when
// rport was asked for (or on a stream), else the received IP and the
// port from the Via's sent-by.
func replyAddr(via *sip.ViaHeader, src netip.AddrPort, stream bool) netip.AddrPort {
	if stream || via.Params.Has("rport") {
		return src
	}
	port := via.Port
	if port == 0 {
		port = 5060
	}
	return netip.AddrPortFrom(src.Addr(), uint16(port))
}

// rfc3261Key is a transaction's key from its top Via (RFC 3261 17.2.3):
// the parsed path (txKey) and the raw ones (fastAck, admission control)
// must build the same string.
func rfc3261Key[S string | []byte](branch, host S, port int, method string) string {
	var kb [128]byte
	return string(appendTxKey(kb[:0], branch, host, port, method))
}

// appendTxKey appends rfc3261Key's key to dst (a lookup from raw bytes
// needs no string).
func appendTxKey[S string | []byte](dst []byte, branch, host S, port int, method string) []byte {
	dst = append(dst, branch...)
	dst = append(dst, '|')
	dst = append(dst, host...)
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, int64(port), 10)
	dst = append(dst, '|')
	return append(dst, method...)
}

func txKey(branch string, via *sip.ViaHeader, method sip.RequestMethod, req *sip.Request) string {
	if method == sip.ACK {
		method = sip.INVITE
	}
	if strings.HasPrefix(branch, sip.RFC3261BranchMagicCookie) {
		return rfc3261Key(branch, via.Host, via.Port, string(method))
	}
	// RFC 2543 peer: fall back on the dialog identifiers.
	tag := ""
	if f := req.From(); f != nil {
		tag, _ = f.Params.Get("tag")
	}
	return "2543|" + string(*req.CallID()) + "|" + tag + "|" + strconv.FormatUint(uint64(req.CSeq().SeqNo), 10) + "|" + string(method)
}

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
	parser := b.parser
	if rawRequestStart(in.data) {
		if b.fastAck(in) || b.fastInvite(in) || b.fastInDialog(in) {
			return
		}
	} else {
		if b.fastResponse(in) {
			return
		}
		parser = b.respParser
	}
	msg, err := parser.ParseSIP(in.data)
	if err != nil {
		b.stats.Malformed.Add(1)
		if req, ok := msg.(*sip.Request); ok && rawRequestStart(in.data) && req.Method != sip.ACK {
			if via := req.Via(); via != nil && via.Host != "" {
				b.replyStateless(in, req, 400, malformedReason(err), "")
			}
		}
		return
	}
	switch m := msg.(type) {
	case *sip.Request:
		ie := validateRequest(m)
		if ie == nil {
			ie = b.checkLimits(in.data, m)
		}
		if ie != nil {
			b.stats.Malformed.Add(1)
			if ie.code != 0 && m.Method != sip.ACK {
				b.replyStateless(in, m, ie.code, ie.reason, "")
			}
			return
		}
		b.onRequest(in, m)
	case *sip.Response:
		if !validResponse(m) {
			b.stats.Malformed.Add(1)
			return
		}
		b.onResponse(in, m)
	}
}

// refuseLarge answers 513 when the oversized message's headers can be
// read, else drops it.
func (b *Balancer) refuseLarge(in inbound) {
	if !rawRequestStart(in.data) {
		return
	}
	msg, _, err := b.parser.ParseHeaders(in.data, false)
	req, ok := msg.(*sip.Request)
	if err != nil || !ok || validateRequest(req) != nil || req.Method == sip.ACK {
		return
	}
	b.replyStateless(in, req, 513, "Message Too Large", "")
}

func (b *Balancer) replyStateless(in inbound, req *sip.Request, code int, reason, extra string) {
	via := req.Via()
	fillReceived(via, in.src)
	r := newResponder(req)
	if c := req.CallID(); c != nil && r.toTag != "" {
		r.toTag = statelessTag([]byte(*c))
	}
	dst := replyAddr(via, in.src, in.conn != nil)
	if err := b.send(in.lis.transport, dst, r.response(code, reason, extra), in.conn); err != nil {
		b.log.Debug("reply", "err", err)
	}
	if code >= 400 {
		b.stats.countReply(code)
	}
}

func (b *Balancer) onRequest(in inbound, req *sip.Request) {
	via := req.Via()
	fillReceived(via, in.src)
	branch, _ := via.Params.Get("branch")
	switch req.Method {
	case sip.ACK:
		b.onAck(in, req, branch)
		return
	case sip.CANCEL:
		b.onCancel(in, req, branch)
		return
	}
	key := txKey(branch, via, req.Method, req)
	if st, ok := b.stx.get(key); ok {
		b.absorb(st)
		return
	}
	if !b.roomFor(capTransactions, in.trusted) {
		b.replyStateless(in, req, 503, "Service Unavailable", b.retryAfter())
		return
	}
	st := &serverTx{b: b, key: key, method: req.Method, callID: string(*req.CallID()), lis: in.lis, conn: in.conn,
		dst: replyAddr(via, in.src, in.conn != nil), req: req, trusted: in.trusted}
	if req.Method == sip.INVITE {
		// Other requests build their responder only when the balancer
		// itself answers (rare): most are answered by the Core.
		r := newResponder(req)
		st.hdr, st.toLine, st.toTag = r.hdr, r.toLine, r.toTag
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	b.stx.put(key, st)
	if req.Method == sip.INVITE {
		defer b.trying(st, st.responder())
	}

	// Max-Forwards (RFC 3261 16.3 step 3 / 16.6 step 3).
	if mf := req.MaxForwards(); mf == nil {
		m := sip.MaxForwardsHeader(70)
		req.AppendHeader(&m)
	} else if *mf == 0 {
		if req.Method == sip.OPTIONS && b.isLocalURI(&req.Recipient) {
			b.finish(st, 200, "OK", "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n")
			return
		}
		b.finish(st, 483, "Too Many Hops", "")
		return
	} else {
		mf.Dec()
	}

	b.stripOwnRoutes(req)
	toTag, hasToTag := req.To().Params.Get("tag")
	if route := topRoute(req); route != nil || hasToTag {
		// Pre-routed or in-dialog: loose routing to the next hop, for
		// an untrusted source only along a dialog we know (relay.go).
		if !st.trusted && !hasToTag {
			b.refuse(refusedRoute)
			b.finish(st, 403, "Forbidden", "")
			return
		}
		tp, dst, err := b.nextHop(req, route, st.callID)
		fromTag, toTagB := []byte(headerTag(fromHeader(req))), []byte(toTag)
		if !st.trusted {
			host := ""
			if err != nil {
				host = targetHost(req, route)
			}
			m, code, reason := b.untrustedInDialog([]byte(st.callID), fromTag, toTagB, tp, dst, host)
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
		switch req.Method {
		case sip.BYE:
			b.dialogs.endBye(st.callID, fromTag, toTagB)
		case sip.INVITE, sip.UPDATE:
			st.refresh = b.dialogs.match([]byte(st.callID), fromTag, toTagB).side == sideCaller
			fallthrough
		default:
			b.dialogs.touch(st.callID, fromTag, toTagB)
		}
		b.attempt(st, nil, tp, dst)
		return
	}
	if st.method == sip.INVITE {
		st.callerTag = headerTag(fromHeader(req))
	}
	if req.Method == sip.OPTIONS && b.isLocalURI(&req.Recipient) && req.Recipient.User == "" {
		b.finish(st, 200, "OK", "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n")
		return
	}
	b.routeNew(st, nil)
}

// routeNew sends a new call or out-of-dialog request to a Core it
// chooses, r being the request as scanned by the raw path (nil on the
// full path); st.mu held.
func (b *Balancer) routeNew(st *serverTx, r *rawRequest) {
	if st.method == sip.INVITE && !b.roomFor(capDialogs, st.trusted) {
		b.finish(st, 503, "Service Unavailable", b.retryAfter())
		return
	}
	c := b.pool.pick(st.callID, nil)
	if c == nil {
		b.stats.NoCore.Add(1)
		b.finish(st, 503, "Service Unavailable", b.retryAfter())
		return
	}
	st.toCore = true
	switch st.method {
	case sip.INVITE, sip.SUBSCRIBE, sip.REFER, sip.NOTIFY:
		st.recordRoute = true
	}
	if st.method == sip.INVITE {
		st.invite = true
		b.stats.Calls.Add(1)
		b.dialogs.create(st.callID, st.callerTag, c)
	}
	b.attemptScanned(st, c, c.transport, c.addr, r)
}
