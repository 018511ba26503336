package balancer

import (
	"bytes"

	"github.com/emiago/sipgo/sip"
)

// inDialogMethods are the methods the raw path forwards, as sipgo names
// them (no string made per request).
var inDialogMethods = [...]sip.RequestMethod{sip.BYE, sip.INFO, sip.UPDATE, sip.PRACK,
	sip.NOTIFY, sip.MESSAGE, sip.OPTIONS, sip.REFER, sip.SUBSCRIBE}

func inDialogMethod(m sip.RequestMethod) (sip.RequestMethod, bool) {
	for _, k := range inDialogMethods {
		if m == k {
			return k, true
		}
	}
	return "", false
}

// fastInDialog handles an in-dialog request from its raw bytes; false
// when the full path must take it (not UDP, not in a dialog, a method it
// does not know, no Max-Forwards or none left, a next hop that is not a plain UDP
// address, or anything request.Scan declines).
func (b *Balancer) fastInDialog(in inbound) bool {
	if bytes.HasPrefix(in.data, []byte("ACK ")) || bytes.HasPrefix(in.data, []byte("INVITE ")) {
		return false
	}
	r, ok := b.scan(in)
	if !ok {
		return false
	}
	toTag, tagged := r.ToTag()
	if mf, ok := r.MaxForwards(); !tagged || !ok || mf == 0 {
		return false
	}
	method, ok := inDialogMethod(r.Method())
	if !ok {
		return false
	}
	var kb [128]byte
	key := r.AppendTxKey(kb[:0])
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
	callID, fromTag := r.CallID(), r.FromTag()
	var m dialogMatch
	if !in.trusted || method == sip.UPDATE {
		m = b.dialogs.match(callID, fromTag, toTag)
	}
	if !in.trusted && !m.allows("udp", dst, "") {
		return false // the full path answers 481 or 403, and counts it
	}
	st := &serverTx{b: b, key: string(key), method: method, callID: string(callID), lis: in.lis, conn: in.conn,
		dst: r.ReplyAddr(), rq: r, trusted: in.trusted, refresh: method == sip.UPDATE && m.side == sideCaller}
	st.mu.Lock()
	defer st.mu.Unlock()
	b.stx.put(st.key, st)
	if method == sip.BYE {
		b.dialogs.endBye(st.callID, fromTag, toTag)
	} else {
		b.dialogs.touch(st.callID, fromTag, toTag)
	}
	b.attempt(st, nil, "udp", dst)
	return true
}
