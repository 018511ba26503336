package balancer

import (
	"bytes"

	"github.com/emiago/sipgo/sip"
)

// fastInvite handles a new call's INVITE from its raw bytes; false when
// the full path must take it: over UDP not on the listener that sends, a
// To tag (re-INVITE), a Route not ours (pre-routed), no Max-Forwards or
// none left, or anything request.Scan declines.
func (b *Balancer) fastInvite(in inbound) bool {
	// Over UDP, only the listener that sends (the others are left to the
	// full path); a stream's own connection carries the answers back.
	if (in.conn == nil && in.lis != b.udpOut) || !bytes.HasPrefix(in.data, []byte("INVITE ")) {
		return false
	}
	r, ok := b.scan(in)
	if !ok || r.Routed() {
		return false
	}
	if _, tagged := r.ToTag(); tagged {
		return false
	}
	if mf, ok := r.MaxForwards(); !ok || mf == 0 {
		return false // the full path adds one, or answers 483
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
	resp, ok := r.Responder()
	if !ok {
		return false
	}
	// One string for the Call-ID and the caller's tag (the dialog keeps both).
	callID, fromTag := r.CallID(), r.FromTag()
	ids := string(callID) + string(fromTag)
	st := &serverTx{b: b, key: string(key), method: sip.INVITE, callID: ids[:len(callID)], callerTag: ids[len(callID):],
		lis: in.lis, conn: in.conn, dst: r.ReplyAddr(), rq: r, trusted: in.trusted,
		hdr: resp.Hdr, toLine: resp.ToLine, toTag: resp.ToTag}
	st.mu.Lock()
	defer st.mu.Unlock()
	b.stx.put(st.key, st)
	b.routeNew(st)
	b.trying(st, resp)
	return true
}
