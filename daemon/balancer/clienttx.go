package balancer

import (
	"github.com/sipedge/sipedge/daemon/balancer/request"
	"net/netip"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"
)

// RFC 3261 timer base values.
const (
	t1 = 500 * time.Millisecond
	t2 = 4 * time.Second
)

// clientTx is one attempt toward a Core or the next hop.
type clientTx struct {
	branch      string
	st          *serverTx
	core        *Core
	transport   string
	dst         netip.AddrPort
	twin        bool // leaves from the Core-facing twin (coresock.go)
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
	waits       int // attempt timeouts put off: the balancer was behind on the Core side (attemptLate)
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

// stop ends an attempt: its final came, or it was given up; st.mu held.
// The request is not sent again: its bytes go.
func (ct *clientTx) stop() {
	ct.done = true
	ct.data = nil
	ct.timerC.Stop()
	ct.clientT.Stop()
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
	if err := b.sendFrom(tp, dst, ct.data, nil, ct.twin); err != nil {
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
		if ct.done || st.client != ct || ct.waits >= maxLateWaits || !b.attemptLate(ct) {
			st.mu.Unlock()
			b.attemptTimeout(ct)
			return
		}
		// Our own backlog may hold the answer: wait a little more.
		ct.waits++
		b.stats.AttemptsPutOff.Add(1)
		ct.attemptDue = now + b.opt.Retry.AttemptTimeout/2
	}
	defer st.mu.Unlock()
	if ct.done || st.client != ct {
		return
	}
	if ct.retransDue != 0 && due >= ct.retransDue && !ct.provisional {
		b.stats.Retransmitted.Add(1)
		b.sendFrom(ct.transport, ct.dst, ct.data, nil, ct.twin)
		ct.interval *= 2
		if st.method != sip.INVITE && ct.interval > t2 {
			ct.interval = t2
		}
		ct.retransDue = now + ct.interval
	}
	b.armClient(ct, now)
}

// attemptLate reports whether the balancer itself is behind on the side
// an attempt's answer comes to: a Core's answer waits unread on the
// Core-facing twin, or in a worker's queue of Core-side messages. Then
// the silence says nothing of the Core (as for probes, probeTimeout),
// and the attempt timer is put off by half, maxLateWaits times at most:
// a Core that is really gone still fails over within twice
// attempt_timeout. st.mu held.
func (b *Balancer) attemptLate(ct *clientTx) bool {
	if ct.core == nil || !ct.twin || ct.transport != "udp" {
		return false
	}
	for _, q := range b.urgent {
		if len(q) > 0 {
			return true
		}
	}
	l, err := b.udpFrom(ct.dst, true)
	return err == nil && l.coreSide && l.unread()
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
	return b.pickCore(st)
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

func (b *Balancer) newBranch() string {
	var buf [64]byte
	return string(strconv.AppendUint(append(buf[:0], b.branchPrefix...), b.seq.Add(1), 36))
}

// attempt forwards st's request to one destination (a Core when c is not
// nil); st.mu held. Whatever backs the request (request.Request: its
// bytes, or sipgo's parse), it goes with our Via on the listener toward
// dst and, when the route is recorded, our Record-Route: the listener it
// came in on, with the outbound one on top when they differ (transport
// or address family), so that each side routes back through its own.
func (b *Balancer) attempt(st *serverTx, c *Core, tp string, dst netip.AddrPort) {
	if c != nil {
		if st.tried == nil {
			st.tried = st.tried1[:0]
		}
		st.tried = append(st.tried, c)
		c.routed.Add(1)
	}
	out := b.coreOut(b.outFor(tp, dst.Addr()), tp, dst, c)
	if out == nil {
		b.finish(st, 503, "Service Unavailable", "")
		return
	}
	if st.rq.Raw() && tp != "udp" && !b.parseKept(st) {
		// Over a stream the parsed request is rendered, Content-Length
		// included, which a datagram may leave out.
		b.finish(st, 500, "Server Internal Error", "")
		return
	}
	branch := b.newBranch()
	rr := ""
	if st.recordRoute {
		rr = st.lis.rrLine
		if o := b.outFor(tp, dst.Addr()); o != st.lis {
			rr = o.rrLine + rr
		}
	}
	size := len(st.rq.Bytes())
	if size == 0 {
		size = 1024
	}
	data := request.AppendForward(&st.rq, make([]byte, 0, size+len(out.host)+len(branch)+len(rr)+48), out.via(), branch, rr)
	ct := &clientTx{branch: branch, st: st, core: c, transport: tp, dst: dst, twin: out.coreSide, data: data, interval: t1}
	st.keepAckPieces(ct, st.rq.CSeq())
	b.launch(st, ct)
}

// parseKept turns a request kept raw into a parsed one (request.Parse):
// false, and logged, when sipgo does not read it (the raw scan took what
// it refuses: FuzzReadingsAgree's business); st.mu held.
func (b *Balancer) parseKept(st *serverTx) bool {
	rq, ref := request.Parse(b.parser, st.rq.Bytes(), st.rq.Source(), false, b.reqCfg)
	if ref != nil {
		b.log.Error("request kept raw does not parse", "call_id", st.callID, "err", ref)
		return false
	}
	st.rq = rq
	return true
}
