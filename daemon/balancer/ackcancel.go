package balancer

import (
	"bytes"
	"github.com/sipedge/sipedge/daemon/balancer/request"
	"net/netip"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"
)

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
		case !haveVia && request.HeaderIs(name, "Via", 'v'):
			haveVia = true
			buf = append(buf, line...)
		case !all:
		case request.HeaderIs(name, "Route", 0):
			routes = append(routes, line...)
			routes = append(routes, "\r\n"...)
		case from == nil && request.HeaderIs(name, "From", 'f'):
			from = line
		case callID == nil && request.HeaderIs(name, "Call-ID", 'i'):
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
	b.sendFrom(ct.transport, ct.dst, data, nil, ct.twin)
	b.stats.CancelsSent.Add(1)
	b.resendUntil(ct.st, ct.transport, ct.dst, ct.twin, data, &ct.cancelAcked)
}

// resendUntil retransmits a request of the proxy's own over UDP (from
// the Core-facing twin with twin) at T1, then doubling, four times at
// most, until *done (set under st.mu when the answer comes).
func (b *Balancer) resendUntil(st *serverTx, tp string, dst netip.AddrPort, twin bool, data []byte, done *bool) {
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
			b.sendFrom(tp, dst, data, nil, twin)
			again(d*2, n-1)
		})
	}
	again(t1, 4)
}

func (b *Balancer) onCancel(in inbound, rq *request.Request) {
	st, ok := b.stx.get(string(rq.AppendTxKeyAs(nil, sip.INVITE)))
	if !ok {
		b.replyStateless(in, rq, 481, "Call/Transaction Does Not Exist", "")
		return
	}
	b.replyStateless(in, rq, 200, "OK", "")
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

func (b *Balancer) onAck(in inbound, rq *request.Request) {
	if st, ok := b.stx.get(string(rq.AppendTxKey(nil))); ok {
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
	b.forwardStateless(in, rq)
}

// forwardStateless forwards an end-to-end ACK (for a 2xx) along its route
// with a branch derived from the incoming one, so its retransmissions
// keep the same branch.
func (b *Balancer) forwardStateless(in inbound, rq *request.Request) {
	if mf, ok := rq.MaxForwards(); ok && mf == 0 {
		return
	}
	callID := rq.CallID()
	tp, dst, host, err := b.requestHop(rq, string(callID))
	if !in.trusted {
		toTag, _ := rq.ToTag()
		m := b.dialogs.match(callID, rq.FromTag(), toTag)
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
	out := b.outFor(tp, dst.Addr())
	if out == nil {
		return
	}
	branch := sip.RFC3261BranchMagicCookie + "sl" + strconv.FormatUint(request.Mix64(request.FNV1a(request.FNV1a(request.FNVOffset64, rq.Branch()), callID)), 36)
	b.stats.Forwarded.Add(1)
	b.send(tp, dst, request.AppendForward(rq, nil, out.via(), branch, ""), nil)
}
