package balancer

import (
	"bytes"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// RFC 3261 timer base values.
const (
	t1 = 500 * time.Millisecond
	t2 = 4 * time.Second
)

// serverTx is the caller-facing side of a proxied transaction, and owns
// its client side (one attempt at a time: serial failover). Its mutex
// guards both; timers and workers take it.
type serverTx struct {
	b      *Balancer
	mu     sync.Mutex
	key    string
	method sip.RequestMethod
	callID string
	lis    *listener
	conn   *tcpConn
	dst    netip.AddrPort // where responses go
	hdr    string         // Via..., From, Call-ID, CSeq lines for our own responses
	toLine string         // To line as received
	toTag  string         // tag for our own non-100 responses ("" = request had one)

	trusted   bool   // from a Core, the box itself or a trusted network (relay.go)
	refresh   bool   // a re-INVITE or UPDATE from a dialog's caller side: its 2xx is a target refresh
	ownFinal  bool   // the final response is our own, not forwarded
	callerTag string // initial INVITE: its From tag, for the dialog entry

	req          *sip.Request   // request being forwarded; nil once final
	raw          []byte         // request as received, when forwarded by the raw path (req nil); nil once final
	via          *sip.ViaHeader // our Via in req (&ownVia); nil once final
	ownVia       sip.ViaHeader
	ownViaParams [1]sip.HeaderKV // ownVia's storage for its branch
	rrs          int             // Record-Routes we added
	recordRoute  bool
	toCore       bool // routed to a Core chosen from the pool (failover allowed)
	invite       bool // initial INVITE: counted in the dialog table
	tried        []*Core
	client       *clientTx
	branches     []string
	tried1       [1]*Core  // tried's storage for the first attempt
	branches1    [1]string // branches' storage for the first attempt
	cancelled    bool
	final        bool
	acked        bool // the caller ACKed our non-2xx final
	ended        bool // out of the tables (endTx)
	finalCode    int
	lastResp     []byte
	finalT       *timer        // Timer G: next retransmission of a non-2xx final (UDP)
	finalIv      time.Duration // its interval
	endT         *timer        // the end of the transaction: linger, Timer H or I

	// pieces for requests the proxy builds toward the Core (ACK, CANCEL)
	ruri   string
	fwdHdr string // Route lines, From, Call-ID lines as forwarded
	cseq   uint32
}

// clientTx is one attempt toward a Core or the next hop.
type clientTx struct {
	branch      string
	st          *serverTx
	core        *Core
	transport   string
	dst         netip.AddrPort
	viaLine     string
	data        []byte
	provisional bool
	done        bool // final received, or the attempt abandoned
	answered    bool // a final came
	cancelSent  bool
	cancelAcked bool
	late        *lateAnswer   // a 2xx after the attempt was abandoned (lateanswer.go)
	clientT     *timer        // the one wheel entry for retransmissions and the attempt timer (clientTimer)
	retransDue  time.Duration // since b.epoch: next retransmission (0: none)
	attemptDue  time.Duration // since b.epoch: attempt timer, Timer B/F (0: stopped)
	timerC      *timer
	timerCDue   time.Duration // since b.epoch: Timer C runs out (a provisional pushes it on)
	interval    time.Duration
}

// onTimer runs one of the attempt's timers (wheel goroutine).
func (ct *clientTx) onTimer(k timerKind) {
	b := ct.st.b
	switch k {
	case timerClient:
		b.clientTimer(ct)
	case timerInvite:
		b.timerC(ct)
	}
}

// onTimer runs one of the transaction's timers (wheel goroutine).
func (st *serverTx) onTimer(k timerKind) {
	switch k {
	case timerEnd:
		st.b.endTx(st)
	case timerFinal:
		st.b.retransmitFinal(st)
	}
}

// stop ends an attempt: its final came, or it was given up; st.mu held.
// The request is not sent again: its bytes go.
func (ct *clientTx) stop() {
	ct.done = true
	ct.data = nil
	ct.timerC.Stop()
	ct.clientT.Stop()
}

// responder holds what our own responses to a request need.
type responder struct {
	hdr    string
	toLine string
	toTag  string
}

func newResponder(req *sip.Request) responder { return newResponderSkip(req, nil) }

// newResponderSkip is newResponder leaving out the Via header own (ours,
// once the request has been forwarded).
func newResponderSkip(req *sip.Request, own *sip.ViaHeader) responder {
	buf := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(buf)
	buf.Reset()
	for _, h := range req.Headers() {
		if v, ok := h.(*sip.ViaHeader); ok && (own == nil || v != own) {
			headerLine(buf, h)
		}
	}
	headerLine(buf, fromHeader(req))
	if c := req.CallID(); c != nil {
		headerLine(buf, c)
	}
	if c := req.CSeq(); c != nil {
		headerLine(buf, c)
	}
	n := buf.Len()
	to := req.To()
	if to != nil {
		writeHeader(buf, to)
	}
	all := buf.String() // one string for both
	r := responder{hdr: all[:n], toLine: all[n:]}
	if to != nil {
		if !to.Params.Has("tag") {
			var tag [16]byte
			r.toTag = string(strconv.AppendUint(append(tag[:0], "sb"...), mix64(fnv1a(fnv1a(fnvOffset64, r.toLine), r.hdr)), 36))
		}
	}
	return r
}

func (r responder) response(code int, reason, extra string) []byte {
	var buf bytes.Buffer
	buf.Grow(len(r.hdr) + len(r.toLine) + len(extra) + 96)
	buf.WriteString("SIP/2.0 ")
	buf.WriteString(strconv.Itoa(code))
	buf.WriteByte(' ')
	buf.WriteString(reason)
	buf.WriteString("\r\n")
	buf.WriteString(r.hdr)
	if r.toLine != "" {
		buf.WriteString(r.toLine)
		if code > 100 && r.toTag != "" {
			buf.WriteString(";tag=")
			buf.WriteString(r.toTag)
		}
		buf.WriteString("\r\n")
	}
	buf.WriteString(extra)
	buf.WriteString("Server: sipedge\r\nContent-Length: 0\r\n\r\n")
	return buf.Bytes()
}

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

// absorb answers a retransmitted request with the last response sent
// for its transaction, if any (RFC 3261 17.2); st.mu not held.
func (b *Balancer) absorb(st *serverTx) {
	b.stats.Retransmissions.Add(1)
	st.mu.Lock()
	if st.lastResp != nil {
		b.sendUp(st, st.lastResp)
	}
	st.mu.Unlock()
}

func (b *Balancer) sendUp(st *serverTx, data []byte) {
	if err := b.send(st.lis.transport, st.dst, data, st.conn); err != nil {
		b.log.Debug("send upstream", "dst", st.dst, "err", err)
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

// responder returns what our own responses need; st.mu held. A
// non-INVITE builds it on first use, from the request as received (our
// Via left out), which is still there: the balancer answers only before
// the transaction's final response.
func (st *serverTx) responder() responder {
	if st.hdr == "" && st.req == nil && st.raw != nil {
		// Forwarded by the raw path (fastInDialog): parsed now, once, for
		// the rare answer of our own (Timer F).
		if req := st.parseKept(); req != nil {
			r := newResponder(req)
			st.hdr, st.toLine, st.toTag = r.hdr, r.toLine, r.toTag
		}
	}
	if st.hdr == "" && st.req != nil {
		r := newResponderSkip(st.req, st.via)
		st.hdr, st.toLine, st.toTag = r.hdr, r.toLine, r.toTag
	}
	return responder{hdr: st.hdr, toLine: st.toLine, toTag: st.toTag}
}

// attempt forwards st's request to one destination (a Core when c is not
// nil); st.mu held.
func (b *Balancer) attempt(st *serverTx, c *Core, tp string, dst netip.AddrPort) {
	b.attemptScanned(st, c, tp, dst, nil)
}

// attemptScanned is attempt with the request as the raw path scanned it
// (r), when it has.
func (b *Balancer) attemptScanned(st *serverTx, c *Core, tp string, dst netip.AddrPort, r *rawRequest) {
	if c != nil {
		if st.tried == nil {
			st.tried = st.tried1[:0]
		}
		st.tried = append(st.tried, c)
		c.routed.Add(1)
	}
	out := b.outFor(tp)
	if out == nil {
		b.finish(st, 503, "Service Unavailable", "")
		return
	}
	if st.req == nil && st.raw != nil {
		// Kept raw (invitefast.go, indialog.go): forwarded from its bytes
		// when it leaves by the listener it came in on over UDP, the
		// common case; parsed now for anything else (a TCP Core).
		if tp == "udp" && out == st.lis {
			if r == nil {
				if rs, ok := b.scanRequest(inbound{data: st.raw, src: st.dst, lis: st.lis}); ok {
					r = &rs
				}
			}
			if r != nil {
				b.attemptRaw(st, c, r, dst)
				return
			}
		}
		if !b.parseRaw(st) {
			b.finish(st, 500, "Server Internal Error", "")
			return
		}
	}
	req := st.req
	branch := b.newBranch()
	rrDone := false
	if st.via == nil {
		st.ownVia = sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Params: st.ownViaParams[:0]}
		st.via = &st.ownVia
		if st.recordRoute && out == st.lis {
			// The usual first attempt: our Via, then our Record-Route,
			// on top in one go.
			req.PrependHeader(st.via, st.lis.rr)
			st.rrs, rrDone = 1, true
		} else {
			req.PrependHeader(st.via)
		}
	}
	st.via.Transport, st.via.Host, st.via.Port = out.viaTp, out.host, int(out.addr.Port())
	st.via.Params.Add("branch", branch)
	if st.recordRoute && !rrDone {
		for ; st.rrs > 0; st.rrs-- {
			req.RemoveHeader("Record-Route")
		}
		req.PrependHeader(st.lis.rr)
		st.rrs = 1
		if out != st.lis {
			req.PrependHeader(out.rr)
			st.rrs = 2
		}
		// The Record-Route must follow our Via: PrependHeader put it on top.
		b.moveViaFirst(req)
	}
	ct := &clientTx{branch: branch, st: st, core: c, transport: tp, dst: dst, data: render(req), interval: t1}
	st.keepAckPieces(ct, req.CSeq().SeqNo)
	b.launch(st, ct)
}

// attemptRaw is attempt for a request kept raw, forwarded from its bytes
// (r) on the listener it came in on; st.mu held.
func (b *Balancer) attemptRaw(st *serverTx, c *Core, r *rawRequest, dst netip.AddrPort) {
	out := st.lis
	branch := b.newBranch()
	rr := ""
	if st.recordRoute {
		rr = out.rrLine
	}
	data := appendForward(r, make([]byte, 0, len(r.p)+len(out.host)+len(branch)+len(rr)+40), out, branch, rr)
	ct := &clientTx{branch: branch, st: st, core: c, transport: "udp", dst: dst, data: data, interval: t1}
	st.keepAckPieces(ct, r.cseq)
	b.launch(st, ct)
}

// keepAckPieces keeps what our ACK and CANCEL on an INVITE's attempt ct
// need, cut from the request as forwarded; st.mu held.
func (st *serverTx) keepAckPieces(ct *clientTx, cseq uint32) {
	if st.method != sip.INVITE {
		return
	}
	first := st.ruri == ""
	var ruri, fwd string
	ruri, ct.viaLine, fwd = ackPieces(ct.data, first)
	if first {
		st.ruri, st.fwdHdr, st.cseq = ruri, fwd, cseq
	}
}

// parseKept parses the request a raw path kept (st.raw), with received
// and rport filled into its top Via as the full path's intake does:
// st.dst is the source address, and its port when rport was asked for.
// nil if it does not parse (the raw scan let through what sipgo
// refuses); st.mu held.
func (st *serverTx) parseKept() *sip.Request {
	m, err := st.b.parser.ParseSIP(st.raw)
	req, ok := m.(*sip.Request)
	if err != nil || !ok || req.Via() == nil {
		st.b.log.Error("request kept raw does not parse", "call_id", st.callID, "err", err)
		return nil
	}
	fillReceived(req.Via(), st.dst)
	return req
}

// parseRaw turns a request kept raw into the parsed one the full path
// forwards, as onRequest would have left it (Max-Forwards decremented,
// our Route entries gone); st.mu held. The raw path took only requests
// with Max-Forwards above 0.
func (b *Balancer) parseRaw(st *serverTx) bool {
	req := st.parseKept()
	if req == nil {
		return false
	}
	if mf := req.MaxForwards(); mf != nil {
		mf.Dec()
	}
	b.stripOwnRoutes(req)
	st.req, st.raw = req, nil
	return true
}

// launch makes ct st's current attempt, sends its request and starts its
// timers; st.mu held.
func (b *Balancer) launch(st *serverTx, ct *clientTx) {
	if !b.roomFor(capBranches, st.trusted) {
		b.finish(st, 503, "Service Unavailable", b.retryAfter())
		return
	}
	branch, tp, dst := ct.branch, ct.transport, ct.dst
	st.client = ct
	if st.branches == nil {
		st.branches = st.branches1[:0]
	}
	st.branches = append(st.branches, branch)
	b.ctx.put(branch, ct)
	b.stats.Forwarded.Add(1)
	if err := b.send(tp, dst, ct.data, nil); err != nil {
		b.log.Debug("forward", "dst", dst, "err", err)
	}
	// Every next hop, a Core or not, has attempt_timeout to answer at
	// all: a request toward one that is gone gets its final response
	// then, not after Timer B/F's 32 s (a caller gives up on a BYE at 5 s).
	timeout := b.opt.Retry.AttemptTimeout
	now := time.Since(b.epoch)
	if tp == "udp" {
		ct.retransDue = now + ct.interval
	}
	ct.attemptDue = now + timeout
	b.armClient(ct, now)
}

// armClient schedules the attempt's wheel entry for the earlier of its
// next retransmission and its attempt timer (one entry, not one for
// each); st.mu held.
func (b *Balancer) armClient(ct *clientTx, now time.Duration) {
	due := ct.attemptDue
	if ct.retransDue != 0 && (due == 0 || ct.retransDue < due) {
		due = ct.retransDue
	}
	if due == 0 {
		return
	}
	ct.clientT = b.wheel.afterTx(max(due-now, 0), ct, timerClient)
}

// clientTimer is the attempt's wheel entry coming round: the attempt
// timer when it ran out, else the request again when a retransmission
// is due (T1 doubling), then the entry again for what is left. Within
// one wheel tick counts as due, as the wheel fires.
func (b *Balancer) clientTimer(ct *clientTx) {
	st := ct.st
	st.mu.Lock()
	now := time.Since(b.epoch)
	due := now + b.wheel.tick
	if ct.attemptDue != 0 && due >= ct.attemptDue {
		st.mu.Unlock()
		b.attemptTimeout(ct)
		return
	}
	defer st.mu.Unlock()
	if ct.done || st.client != ct {
		return
	}
	if ct.retransDue != 0 && due >= ct.retransDue && !ct.provisional {
		b.stats.Retransmitted.Add(1)
		b.send(ct.transport, ct.dst, ct.data, nil)
		ct.interval *= 2
		if st.method != sip.INVITE && ct.interval > t2 {
			ct.interval = t2
		}
		ct.retransDue = now + ct.interval
	}
	b.armClient(ct, now)
}

// ackPieces cuts from a rendered request what our ACK and CANCEL on its
// branch need: the top Via line (ours) and, with all, the Request-URI and
// the Route, From and Call-ID lines (CRLF each), as forwarded. One string
// holds the three.
func ackPieces(data []byte, all bool) (ruri, via, fwd string) {
	eol := bytes.IndexByte(data, '\n')
	if eol < 0 {
		return "", "", ""
	}
	var arr [1024]byte
	buf := arr[:0]
	if all {
		start := bytes.TrimRight(data[:eol], "\r")
		if i, j := bytes.IndexByte(start, ' '), bytes.LastIndexByte(start, ' '); i >= 0 && j > i {
			buf = append(buf, start[i+1:j]...)
		}
	}
	nRURI := len(buf)
	var from, callID []byte
	haveVia := false
	var routes []byte
	for i := eol + 1; i < len(data); {
		j := bytes.IndexByte(data[i:], '\n')
		if j < 0 {
			break
		}
		line := bytes.TrimRight(data[i:i+j], "\r")
		i += j + 1
		k := bytes.IndexByte(line, ':')
		if len(line) == 0 {
			break
		}
		if k <= 0 {
			continue
		}
		name := bytes.TrimSpace(line[:k])
		switch {
		case !haveVia && hdrIs(name, "Via", 'v'):
			haveVia = true
			buf = append(buf, line...)
		case !all:
		case hdrIs(name, "Route", 0):
			routes = append(routes, line...)
			routes = append(routes, "\r\n"...)
		case from == nil && hdrIs(name, "From", 'f'):
			from = line
		case callID == nil && hdrIs(name, "Call-ID", 'i'):
			callID = line
		}
	}
	nVia := len(buf)
	if all {
		buf = append(buf, routes...)
		for _, l := range [...][]byte{from, callID} {
			if l != nil {
				buf = append(buf, l...)
				buf = append(buf, "\r\n"...)
			}
		}
	}
	s := string(buf)
	return s[:nRURI], s[nRURI:nVia], s[nVia:]
}

// moveViaFirst puts our Via (the first Via) back at the top of the header
// list after Record-Routes were prepended.
func (b *Balancer) moveViaFirst(req *sip.Request) {
	hs := req.Headers()
	for i, h := range hs {
		if _, ok := h.(*sip.ViaHeader); ok {
			if i > 0 {
				copy(hs[1:i+1], hs[:i])
				hs[0] = h
			}
			return
		}
	}
}

// attemptTimeout: the destination did not answer at all (Timer B/F, or
// the per-attempt timer toward a Core): fail over or answer 408.
func (b *Balancer) attemptTimeout(ct *clientTx) {
	st := ct.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if ct.done || st.client != ct || (ct.provisional && st.method == sip.INVITE) {
		return
	}
	ct.stop()
	b.stats.AttemptTimeouts.Add(1)
	if ct.core != nil {
		ct.core.failovers.Add(1)
		b.suspect(ct.core, "no answer within attempt_timeout")
	}
	if st.final {
		return
	}
	if st.cancelled {
		b.finish(st, 487, "Request Terminated", "")
		return
	}
	if next := b.nextCore(st); next != nil {
		b.stats.Failovers.Add(1)
		if st.invite {
			b.dialogs.create(st.callID, st.callerTag, next)
		}
		b.attempt(st, next, next.transport, next.addr)
		return
	}
	b.finishTimeout(st)
}

// finishTimeout answers a request whose next hop did not answer in
// time: 408 to an INVITE; 504 Server Time-out to any other request, as
// RFC 4320 forbids a 408 to a non-INVITE (a 408 would reach the
// caller after its own Timer F, and a late 408 makes callers and
// proxies take the whole hop for dead). 504 says what happened: the
// next server did not answer in time; st.mu held.
func (b *Balancer) finishTimeout(st *serverTx) {
	if st.method == sip.INVITE {
		b.finish(st, 408, "Request Timeout", "")
		return
	}
	b.finish(st, 504, "Server Time-out", "")
}

func (b *Balancer) nextCore(st *serverTx) *Core {
	if !st.toCore || len(st.tried) >= b.opt.Retry.MaxTries {
		return nil
	}
	return b.pool.pick(st.callID, st.tried)
}

// timerC fires when a proceeding INVITE rang too long: CANCEL the branch
// and answer 408.
func (b *Balancer) timerC(ct *clientTx) {
	st := ct.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if ct.done || st.client != ct || st.final {
		return
	}
	if left := ct.timerCDue - time.Since(b.epoch); left > 0 {
		ct.timerC = b.wheel.afterTx(left, ct, timerInvite) // a later provisional restarted it
		return
	}
	b.sendCancel(ct)
	b.finish(st, 408, "Request Timeout", "")
}

// finish sends our own final response upstream; st.mu held.
func (b *Balancer) finish(st *serverTx, code int, reason, extra string) {
	if st.final {
		return
	}
	st.final, st.finalCode, st.ownFinal = true, code, true
	st.lastResp = st.responder().response(code, reason, extra)
	b.sendUp(st, st.lastResp)
	b.stats.countReply(code)
	if st.invite {
		reason := "failed"
		if code == 487 {
			reason = "cancelled"
		}
		b.dialogs.end(st.callID, reason)
	}
	b.completed(st)
}

// completed drops the request and lets the transaction linger to absorb
// retransmissions; st.mu held.
func (b *Balancer) completed(st *serverTx) {
	st.req, st.via, st.raw = nil, nil, nil
	if c := st.client; c != nil && (c.done || c.provisional) {
		c.data = nil // no more retransmissions of the request: free it now
	}
	// What only our own responses and our ACK/CANCEL need goes too, so
	// that a lingering transaction holds little more than its last
	// response. A non-2xx INVITE final keeps the ACK pieces (the Core
	// retransmits it until our ACK gets there), so does a transaction
	// that tried several Cores (a late final on an earlier attempt).
	st.hdr, st.toLine = "", ""
	if st.finalCode < 300 && len(st.branches) <= 1 {
		st.ruri, st.fwdHdr = "", ""
		if c := st.client; c != nil {
			c.viaLine = ""
		}
	}
	linger := b.opt.TxLinger
	if st.method == sip.INVITE && st.finalCode >= 300 && st.conn == nil && (st.trusted || !st.ownFinal) {
		// Timer G/H (RFC 3261 17.2.1): over UDP the caller, which
		// stopped retransmitting at our 100, learns of a lost final
		// only from us. Retransmitted until its ACK (onAck) or Timer H.
		st.finalIv = t1
		st.finalT = b.wheel.afterTx(t1, st, timerFinal)
		linger = max(linger, 64*t1)
	}
	st.endT = b.wheel.afterTx(linger, st, timerEnd)
}

// retransmitFinal is Timer G: the non-2xx final again, at intervals
// doubling from T1 up to T2.
func (b *Balancer) retransmitFinal(st *serverTx) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.finalT == nil || st.acked || st.ended {
		return
	}
	b.stats.FinalsRetransmitted.Add(1)
	b.sendUp(st, st.lastResp)
	st.finalIv = min(2*st.finalIv, t2)
	st.finalT = b.wheel.afterTx(st.finalIv, st, timerFinal)
}

// stopFinal ends Timer G (a 2xx went up after our own non-2xx final);
// st.mu held.
func (st *serverTx) stopFinal() {
	st.finalT.Stop()
	st.finalT = nil
}

// ackReceived is the caller's ACK of our non-2xx final: Timer G stops,
// and the transaction stays TxLinger more (Timer I) to absorb the ACK's
// retransmissions instead of waiting for Timer H; st.mu held.
func (b *Balancer) ackReceived(st *serverTx) {
	if st.acked {
		return
	}
	st.acked = true
	if st.finalT == nil || st.ended {
		return
	}
	st.stopFinal()
	st.endT.Stop()
	st.endT = b.wheel.afterTx(b.opt.TxLinger, st, timerEnd)
}

// endTx removes a completed transaction and its branches from the tables.
func (b *Balancer) endTx(st *serverTx) {
	st.mu.Lock()
	if st.ended {
		st.mu.Unlock()
		return
	}
	st.ended = true
	if st.finalT != nil && !st.acked {
		b.stats.FinalsUnacked.Add(1) // Timer H
	}
	st.finalT.Stop()
	branches := st.branches
	var late []string
	if len(branches) > 1 && st.method == sip.INVITE {
		// An attempt given up unanswered may still answer 2xx: its branch
		// stays, bounded by Timer C, so that the call is ended there
		// (endLateAnswer) and not passed on to the caller as a stray 2xx.
		branches = nil
		for _, br := range st.branches {
			if ct, ok := b.ctx.get(br); ok && ct != st.client && !ct.answered {
				late = append(late, br)
			} else {
				branches = append(branches, br)
			}
		}
	}
	if c := st.client; c != nil {
		c.stop()
	}
	st.mu.Unlock()
	b.stx.del(st.key)
	for _, br := range branches {
		b.ctx.del(br)
	}
	if len(late) > 0 {
		b.wheel.after(b.opt.InviteTimeout, func() {
			for _, br := range late {
				b.ctx.del(br)
			}
		})
	}
}

// buildToCore renders a request the proxy itself sends on ct's branch
// (ACK for a non-2xx final, CANCEL).
func (st *serverTx) buildToCore(method string, ct *clientTx, toLine string) []byte {
	return buildRequest(method, st.ruri, ct.viaLine, st.fwdHdr, toLine, st.cseq)
}

// buildRequest renders a request of the proxy's own: hdr holds the
// header lines between the Via line and the To line (Route, From,
// Call-ID).
func buildRequest(method, ruri, viaLine, hdr, toLine string, cseq uint32) []byte {
	var buf bytes.Buffer
	buf.WriteString(method)
	buf.WriteByte(' ')
	buf.WriteString(ruri)
	buf.WriteString(" SIP/2.0\r\n")
	buf.WriteString(viaLine)
	buf.WriteString("\r\n")
	buf.WriteString(hdr)
	buf.WriteString(toLine)
	buf.WriteString("\r\nCSeq: ")
	buf.WriteString(strconv.FormatUint(uint64(cseq), 10))
	buf.WriteByte(' ')
	buf.WriteString(method)
	buf.WriteString("\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
	return buf.Bytes()
}

// sendCancel CANCELs ct's branch and retransmits the CANCEL over UDP
// until it is answered; st.mu held.
func (b *Balancer) sendCancel(ct *clientTx) {
	if ct.cancelSent {
		return
	}
	ct.cancelSent = true
	data := ct.st.buildToCore("CANCEL", ct, ct.st.toLine)
	b.send(ct.transport, ct.dst, data, nil)
	b.stats.CancelsSent.Add(1)
	b.resendUntil(ct.st, ct.transport, ct.dst, data, &ct.cancelAcked)
}

// resendUntil retransmits a request of the proxy's own over UDP at T1,
// then doubling, four times at most, until *done (set under st.mu when
// the answer comes).
func (b *Balancer) resendUntil(st *serverTx, tp string, dst netip.AddrPort, data []byte, done *bool) {
	if tp != "udp" {
		return
	}
	var again func(d time.Duration, n int)
	again = func(d time.Duration, n int) {
		b.wheel.after(d, func() {
			st.mu.Lock()
			defer st.mu.Unlock()
			if *done || n == 0 {
				return
			}
			b.send(tp, dst, data, nil)
			again(d*2, n-1)
		})
	}
	again(t1, 4)
}

func (b *Balancer) onCancel(in inbound, req *sip.Request, branch string) {
	st, ok := b.stx.get(txKey(branch, req.Via(), sip.INVITE, req))
	if !ok {
		b.replyStateless(in, req, 481, "Call/Transaction Does Not Exist", "")
		return
	}
	b.replyStateless(in, req, 200, "OK", "")
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.final || st.cancelled {
		return
	}
	st.cancelled = true
	ct := st.client
	switch {
	case ct == nil || ct.done:
		b.finish(st, 487, "Request Terminated", "")
	case ct.provisional:
		b.sendCancel(ct)
	}
	// else: CANCEL goes out when the first provisional arrives, or 487
	// when the attempt times out.
}

func (b *Balancer) onAck(in inbound, req *sip.Request, branch string) {
	if st, ok := b.stx.get(txKey(branch, req.Via(), sip.ACK, req)); ok {
		st.mu.Lock()
		absorb := st.final && st.finalCode >= 300
		if absorb {
			b.ackReceived(st)
		}
		st.mu.Unlock()
		if absorb {
			return // hop-by-hop ACK for a non-2xx final
		}
	}
	b.forwardStateless(in, req)
}

// trying sends a new INVITE's 100 Trying, unless the balancer answered
// it already (an answer of ours at once: one datagram back, not two, to
// a source that may be spoofed); st.mu held.
func (b *Balancer) trying(st *serverTx, r responder) {
	if st.final {
		return
	}
	st.lastResp = r.response(100, "Trying", "")
	b.sendUp(st, st.lastResp)
}

// forwardStateless forwards an end-to-end ACK (for a 2xx) along its route
// with a branch derived from the incoming one, so its retransmissions
// keep the same branch.
func (b *Balancer) forwardStateless(in inbound, req *sip.Request) {
	if mf := req.MaxForwards(); mf != nil {
		if *mf == 0 {
			return
		}
		mf.Dec()
	}
	b.stripOwnRoutes(req)
	callID := string(*req.CallID())
	route := topRoute(req)
	tp, dst, err := b.nextHop(req, route, callID)
	if !in.trusted {
		host := ""
		if err != nil {
			host = targetHost(req, route)
		}
		toTag, _ := req.To().Params.Get("tag")
		m := b.dialogs.match([]byte(callID), []byte(headerTag(fromHeader(req))), []byte(toTag))
		if !m.allows(tp, dst, host) {
			b.refuse(refusedAck)
			return
		}
		if err != nil {
			tp, dst, err = m.tp, m.dst, nil
		}
	}
	if err != nil || b.isLocal(dst) {
		return
	}
	out := b.outFor(tp)
	if out == nil {
		return
	}
	ib, _ := req.Via().Params.Get("branch")
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: out.viaTp,
		Host: out.host, Port: int(out.addr.Port()), Params: sip.NewParams()}
	via.Params.Add("branch", sip.RFC3261BranchMagicCookie+"sl"+strconv.FormatUint(mix64(fnv1a(fnv1a(fnvOffset64, ib), string(*req.CallID()))), 36))
	req.PrependHeader(via)
	b.stats.Forwarded.Add(1)
	b.send(tp, dst, render(req), nil)
}

func (b *Balancer) onResponse(in inbound, res *sip.Response) {
	via := res.Via()
	branch, _ := via.Params.Get("branch")
	if strings.HasPrefix(branch, b.probePrefix) {
		b.onProbeResponse(branch, res)
		return
	}
	ct, ok := b.ctx.get(branch)
	if !ok {
		// Not ours any more: forward 2xx to INVITE statelessly (RFC 3261
		// 16.7: retransmitted 2xx after the transaction ended).
		if res.StatusCode >= 200 && res.StatusCode < 300 && res.CSeq().MethodName == sip.INVITE && b.isLocalVia(via) {
			if in.trusted || b.responseInDialog(res) {
				b.forwardResponseStateless(res, in.trusted)
				return
			}
		}
		if !in.trusted {
			b.refuse(refusedResponse)
		}
		return
	}
	m := res.CSeq().MethodName
	b.proxyResponse(ct, &respView{code: res.StatusCode, cancel: m == sip.CANCEL, bye: m == sip.BYE, res: res, raw: in.data})
}

// proxyResponse is the stateful handling of a response on one of our
// client transactions, parsed (v.res) or scanned raw.
func (b *Balancer) proxyResponse(ct *clientTx, v *respView) {
	st := ct.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if v.cancel {
		ct.cancelAcked = true
		return
	}
	if v.bye && ct.late != nil {
		ct.late.byeDone = ct.late.byeDone || v.code >= 200
		return
	}
	code := v.code
	invite := st.method == sip.INVITE
	if code < 200 {
		if ct.done {
			return
		}
		ct.retransDue = 0 // no more retransmissions
		if !invite && !ct.provisional {
			// A non-INVITE next hop that answered has Timer F (from the
			// request) to send its final.
			ct.provisional = true
			ct.attemptDue += b.opt.NonInviteTimeout - b.opt.Retry.AttemptTimeout
		}
		if invite {
			ct.attemptDue = 0 // the attempt timer stops too: one entry less
			ct.clientT.Stop()
			ct.provisional = true
			// Timer C restarts: the running entry, when it comes, re-arms
			// for what is left (one wheel entry per attempt, not one per
			// provisional).
			ct.timerCDue = time.Since(b.epoch) + b.opt.InviteTimeout
			if ct.timerC == nil {
				ct.timerC = b.wheel.afterTx(b.opt.InviteTimeout, ct, timerInvite)
			}
			if st.cancelled {
				b.sendCancel(ct)
			}
		}
		if code == 100 || st.final || st.client != ct {
			return
		}
		st.lastResp = v.forward()
		b.sendUp(st, st.lastResp)
		return
	}
	// Final response.
	ct.answered = true
	if invite && code >= 300 {
		b.send(ct.transport, ct.dst, st.buildToCore("ACK", ct, v.toLine()), nil)
	}
	if st.client != ct {
		// A final on an abandoned attempt (attempt timer, Core down): the
		// call went on elsewhere. A 2xx set it up on this Core all the
		// same: end it there.
		ct.stop()
		if invite && code < 300 {
			b.endLateAnswer(ct, v)
		}
		return
	}
	if ct.done || st.final {
		ct.stop()
		if invite && code < 300 {
			// A 2xx retransmission (the caller's ACK was lost), or a 2xx
			// after we answered 408 (Timer C, attempt timer): the call is
			// up all the same, the caller must see it (RFC 3261 16.7 step
			// 5), and no longer our 408.
			st.stopFinal()
			b.sendUp(st, v.forward())
		}
		return
	}
	ct.stop()
	if code >= 300 && st.toCore && !st.cancelled && b.retryOn(code) {
		if ct.core != nil {
			ct.core.failovers.Add(1)
		}
		if next := b.nextCore(st); next != nil {
			b.stats.Failovers.Add(1)
			if st.invite {
				b.dialogs.create(st.callID, st.callerTag, next)
			}
			b.attempt(st, next, next.transport, next.addr)
			return
		}
	}
	if code == 503 {
		// RFC 3261 16.7 step 6: a 503 says that its sender is
		// unavailable, not the edge; passed on from the VIP it would make
		// a carrier's router take the whole edge out of service. Our own
		// 503 (no Core can take the call) stays a 503.
		b.finish(st, 500, "Server Internal Error", "")
		return
	}
	st.final, st.finalCode = true, code
	st.lastResp = v.forward()
	b.sendUp(st, st.lastResp)
	if code >= 400 {
		b.stats.countReply(code)
	}
	if st.refresh && code < 300 {
		b.dialogs.refresh(st.callID, b.targetOf(v.bytes()))
	}
	if st.invite {
		if code < 300 {
			b.stats.Answered.Add(1)
			if ct.core != nil {
				ct.core.answered.Add(1)
			}
			b.dialogs.confirm(st.callID, v.sessionExpires(), b.targetOf(v.bytes()))
		} else {
			reason := "failed"
			if code == 487 {
				reason = "cancelled"
			}
			b.dialogs.end(st.callID, reason)
		}
	}
	b.completed(st)
}

func (b *Balancer) retryOn(code int) bool {
	for _, c := range b.opt.Retry.On {
		if c == code {
			return true
		}
	}
	return false
}

// forwardResponseStateless pops our Via and sends the response to the
// next Via's received/rport or sent-by: a unicast address, and over TCP
// only for a trusted sender (no connection dialled where a stranger's
// Via points).
func (b *Balancer) forwardResponseStateless(res *sip.Response, trusted bool) {
	res.RemoveHeader("Via")
	next := res.Via()
	if next == nil {
		return
	}
	host := next.Params.GetOr("received", next.Host)
	port := next.Port
	if rp, ok := next.Params.Get("rport"); ok && rp != "" {
		port, _ = strconv.Atoi(rp)
	}
	if port == 0 {
		port = 5060
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !unicast(ip.Unmap()) {
		b.refuse(refusedResponse)
		return
	}
	tp := "udp"
	if strings.EqualFold(next.Transport, "tcp") {
		if !trusted {
			b.refuse(refusedResponse)
			return
		}
		tp = "tcp"
	}
	b.send(tp, netip.AddrPortFrom(ip.Unmap(), uint16(port)), render(res), nil)
}

func sessionExpires(res *sip.Response) time.Duration {
	h := res.GetHeader("Session-Expires")
	if h == nil {
		h = res.GetHeader("x")
	}
	if h == nil {
		return 0
	}
	v, _, _ := strings.Cut(h.Value(), ";")
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

func (b *Balancer) newBranch() string {
	var buf [64]byte
	return string(strconv.AppendUint(append(buf[:0], b.branchPrefix...), b.seq.Add(1), 36))
}
