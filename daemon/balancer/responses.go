package balancer

import (
	"github.com/sipedge/sipedge/daemon/balancer/request"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Responses from the next hop: matched to their client transaction,
// passed upstream (a 503 as 500), failover on a retryable code, and a
// 2xx retransmission after the transaction forwarded statelessly.

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
		b.sendFrom(ct.transport, ct.dst, st.buildToCore("ACK", ct, v.toLine()), nil, ct.twin)
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
	if strings.EqualFold(next.Transport, "tcp") || strings.EqualFold(next.Transport, "tls") {
		if !trusted {
			b.refuse(refusedResponse)
			return
		}
		tp = strings.ToLower(next.Transport)
	}
	b.send(tp, netip.AddrPortFrom(ip.Unmap(), uint16(port)), request.Render(res), nil)
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
