package balancer

import (
	"bytes"
	"net/netip"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"
)

// ACK and CANCEL: the hop-by-hop ACK of a non-2xx final absorbed, the
// end-to-end ACK of a 2xx forwarded statelessly, CANCEL answered and
// sent on the pending branch, and the requests the balancer builds
// toward a Core itself (ACK, CANCEL).

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
