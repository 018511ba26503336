package balancer

import (
	"github.com/sipedge/sipedge/daemon/balancer/request"
	"net/netip"
	"slices"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// lateAnswer is what the balancer sent for a late 2xx on one attempt.
type lateAnswer struct {
	tp      string
	dst     netip.AddrPort
	twin    bool   // sent from the Core-facing twin (coresock.go)
	ack     []byte // sent again for each retransmission of the 2xx
	byeDone bool   // the BYE was answered
}

// endLateAnswer ACKs the 2xx v on the abandoned attempt ct and ends the
// call with BYE, both built from the 2xx: its Contact as Request-URI, the
// Record-Route entries between the balancer and the Core as route set,
// its To with the Core's tag, our own Via. st.mu held.
func (b *Balancer) endLateAnswer(ct *clientTx, v *respView) {
	st := ct.st
	if la := ct.late; la != nil {
		b.sendFrom(la.tp, la.dst, la.ack, nil, la.twin) // the 2xx again: our ACK was lost
		return
	}
	m, err := b.parser.ParseSIP(v.raw)
	res, ok := m.(*sip.Response)
	if err != nil || !ok || st.ruri == "" {
		b.log.Warn("late 2xx on an abandoned attempt not ended", "core", ct.core, "call_id", st.callID, "err", err)
		return
	}
	la := &lateAnswer{tp: ct.transport, dst: ct.dst}
	ruri, next := st.ruri, (*sip.Uri)(nil) // no Contact: the INVITE's target
	if c := res.Contact(); c != nil {
		ruri, next = c.Address.String(), &c.Address
	}
	var hdr strings.Builder
	routes := b.routeToCore(res)
	for i := range routes {
		hdr.WriteString("Route: <")
		hdr.WriteString(routes[i].String())
		hdr.WriteString(">\r\n")
	}
	if len(routes) > 0 {
		next = &routes[0]
	}
	if next != nil {
		if tp, dst, err := request.Resolve(next); err == nil && !b.isLocal(dst) && b.outFor(tp, dst.Addr()) != nil {
			la.tp, la.dst = tp, dst
		}
	}
	// From and Call-ID as forwarded: an INVITE routed to a Core from the
	// pool (the only kind that fails over) carried no Route.
	hdr.WriteString(st.fwdHdr)
	out, toLine := b.coreOut(b.outFor(la.tp, la.dst.Addr()), la.tp, la.dst, nil), v.toLine()
	la.twin = out.coreSide
	la.ack = buildRequest("ACK", ruri, viaLine(out, b.newBranch()), hdr.String(), toLine, st.cseq)
	byeBranch := b.newBranch()
	bye := buildRequest("BYE", ruri, viaLine(out, byeBranch), hdr.String(), toLine, st.cseq+1)
	ct.late = la
	b.stats.LateAnswers.Add(1)
	b.sendFrom(la.tp, la.dst, la.ack, nil, la.twin)
	b.sendFrom(la.tp, la.dst, bye, nil, la.twin)
	// The BYE's answer finds ct by its branch and stops the
	// retransmissions (proxyResponse); the branch goes at Timer F.
	b.ctx.put(byeBranch, ct)
	b.wheel.after(64*t1, func() { b.ctx.del(byeBranch) })
	b.resendUntil(st, la.tp, la.dst, la.twin, bye, &la.byeDone)
	b.log.Info("late 2xx on an abandoned attempt: ACKed and ended with BYE", "core", ct.core, "call_id", st.callID)
}

// routeToCore is the route set from the balancer to the Core that sent
// res, a 2xx to an INVITE it forwarded: the Record-Route entries above
// its own (added between it and the Core), nearest first. Normally none.
func (b *Balancer) routeToCore(res *sip.Response) []sip.Uri {
	var above []sip.Uri
	for _, h := range res.GetHeaders("Record-Route") {
		rr, ok := h.(*sip.RecordRouteHeader)
		if !ok {
			return nil
		}
		if b.isLocalURI(&rr.Address) {
			slices.Reverse(above)
			return above
		}
		above = append(above, rr.Address)
	}
	return nil
}

// viaLine is our Via header line on out with branch.
func viaLine(out *listener, branch string) string {
	return "Via: SIP/2.0/" + out.viaTp + " " + out.addr.String() + ";branch=" + branch
}
