package balancer

import (
	"bytes"

	"github.com/emiago/sipgo/sip"
)

// In-dialog requests other than ACK and INVITE (BYE above all: one in
// every call; also INFO, UPDATE, PRACK, NOTIFY, ...) are forwarded
// statefully but need nothing sipgo's parse gives: no Record-Route, no
// Core to choose, no 100 Trying. fastInDialog keys the server
// transaction, absorbs a retransmission, and forwards along the route
// set from the raw bytes (rawreq.go), with the same transaction
// structures, timers and response handling as the full path. Only an
// answer of the balancer's own (Timer F's 408) needs a parse, done then.

// inDialogMethods are the methods the raw path forwards, as sipgo names
// them (no string made per request).
var inDialogMethods = [...]sip.RequestMethod{sip.BYE, sip.INFO, sip.UPDATE, sip.PRACK,
	sip.NOTIFY, sip.MESSAGE, sip.OPTIONS, sip.REFER, sip.SUBSCRIBE}

func inDialogMethod(m []byte) (sip.RequestMethod, bool) {
	for _, k := range inDialogMethods {
		if string(m) == string(k) {
			return k, true
		}
	}
	return "", false
}

// fastInDialog handles an in-dialog request from its raw bytes; false
// when the full path must take it (not UDP, not in a dialog, a method it
// does not know, no Max-Forwards or none left, a next hop that is not a
// plain UDP address, or anything scanRequest declines).
func (b *Balancer) fastInDialog(in inbound) bool {
	if in.conn != nil || b.udpOut == nil || bytes.HasPrefix(in.data, []byte("ACK ")) || bytes.HasPrefix(in.data, []byte("INVITE ")) {
		return false
	}
	r, ok := b.scanRequest(in)
	if !ok || !r.toTag || r.mf <= 0 {
		return false
	}
	method, ok := inDialogMethod(r.method)
	if !ok {
		return false
	}
	var kb [128]byte
	key := appendTxKey(kb[:0], r.branch, r.sentBy, int(r.viaPort), string(method))
	if st, ok := getBytes(b.stx, key); ok {
		b.absorb(st)
		return true
	}
	if !b.hasRoom(capTransactions, in.trusted) {
		return false // the full path answers 503
	}
	dst, h := b.rawNextHop(&r)
	if h != hopOK {
		return false // the full path answers 404
	}
	var m dialogMatch
	if !in.trusted || method == sip.UPDATE {
		m = b.dialogs.match(r.callID, r.fromTag, r.toTagV)
	}
	if !in.trusted && !m.allows("udp", dst, "") {
		return false // the full path answers 481 or 403, and counts it
	}
	st := &serverTx{b: b, key: string(key), method: method, callID: string(r.callID), lis: in.lis,
		dst: r.replyAddr(), raw: in.data, trusted: in.trusted, refresh: method == sip.UPDATE && m.side == sideCaller}
	st.mu.Lock()
	defer st.mu.Unlock()
	b.stx.put(st.key, st)
	if method == sip.BYE {
		b.dialogs.endBye(st.callID, r.fromTag, r.toTagV)
	} else {
		b.dialogs.touch(st.callID, r.fromTag, r.toTagV)
	}
	branch := b.newBranch()
	data := appendForward(&r, make([]byte, 0, len(in.data)+len(b.udpOut.host)+len(branch)+40), b.udpOut, branch, "")
	b.launch(st, &clientTx{branch: branch, st: st, transport: "udp", dst: dst, data: data, interval: t1})
	return true
}
