package balancer

import (
	"github.com/sipedge/sipedge/daemon/balancer/request"
	"net/netip"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
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

	rq          request.Request // the request being forwarded (its bytes or its parse); zero once final
	recordRoute bool
	toCore      bool // routed to a Core chosen from the pool (failover allowed)
	invite      bool // initial INVITE: counted in the dialog table
	tried       []*Core
	client      *clientTx
	branches    []string
	tried1      [1]*Core  // tried's storage for the first attempt
	branches1   [1]string // branches' storage for the first attempt
	cancelled   bool
	final       bool
	acked       bool // the caller ACKed our non-2xx final
	ended       bool // out of the tables (endTx)
	finalCode   int
	lastResp    []byte
	finalT      *timer        // Timer G: next retransmission of a non-2xx final (UDP)
	finalIv     time.Duration // its interval
	endT        *timer        // the end of the transaction: linger, Timer H or I

	// pieces for requests the proxy builds toward the Core (ACK, CANCEL)
	ruri   string
	fwdHdr string // Route lines, From, Call-ID lines as forwarded
	cseq   uint32
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

// finish sends our own final response upstream; st.mu held.
func (b *Balancer) finish(st *serverTx, code int, reason, extra string) {
	if st.final {
		return
	}
	st.final, st.finalCode, st.ownFinal = true, code, true
	st.lastResp = st.responder().Response(code, reason, extra)
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
	st.rq = request.Request{}
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

// trying sends a new INVITE's 100 Trying, unless the balancer answered
// it already (an answer of ours at once: one datagram back, not two, to
// a source that may be spoofed); st.mu held.
func (b *Balancer) trying(st *serverTx, r responder) {
	if st.final {
		return
	}
	st.lastResp = r.Response(100, "Trying", "")
	b.sendUp(st, st.lastResp)
}

// responder holds what our own responses to a request need (request.Responder).
type responder = request.Responder

// responder returns what our own responses need; st.mu held. A
// non-INVITE builds it on first use, from the request as received, which
// is still there: the balancer answers only before the transaction's
// final response.
func (st *serverTx) responder() responder {
	if st.hdr == "" && !st.rq.Empty() {
		r, ok := st.rq.Responder()
		if !ok && st.b.parseKept(st) { // more Via lines than the raw cut takes
			r, ok = st.rq.Responder()
		}
		if ok {
			st.hdr, st.toLine, st.toTag = r.Hdr, r.ToLine, r.ToTag
		}
	}
	return responder{Hdr: st.hdr, ToLine: st.toLine, ToTag: st.toTag}
}
