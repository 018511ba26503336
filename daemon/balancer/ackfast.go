package balancer

import (
	"bytes"
	"github.com/sipedge/sipedge/daemon/balancer/request"
	"strconv"

	"github.com/emiago/sipgo/sip"
)

// fastAck forwards a 2xx ACK from the raw datagram; false when the full
// path must take it.
func (b *Balancer) fastAck(in inbound) bool {
	if !bytes.HasPrefix(in.data, []byte("ACK ")) {
		return false
	}
	r, ok := b.scan(in)
	if !ok {
		return false
	}
	// The hop-by-hop ACK of a non-2xx final matches our server transaction.
	var kb [128]byte
	if _, ok := getBytes(b.stx, r.AppendTxKey(kb[:0])); ok {
		return false
	}
	mf, ok := r.MaxForwards()
	if !ok {
		return false // the full path adds one
	}
	if mf == 0 {
		return true // Max-Forwards exhausted: an ACK gets no answer
	}
	dst, hop := b.rawNextHop(&r)
	switch hop {
	case hopDecline:
		return false
	case hopNone:
		return true // nowhere to go: dropped, as the full path does
	}
	if !in.trusted {
		tag, _ := r.ToTag()
		if m := b.dialogs.match(r.CallID(), r.FromTag(), tag); !m.allows("udp", dst, "") {
			b.refuse(refusedAck)
			return true // an ACK gets no answer: dropped
		}
	}
	var br [48]byte
	branch := strconv.AppendUint(append(br[:0], sip.RFC3261BranchMagicCookie+"sl"...), request.Mix64(request.FNV1a(request.FNV1a(request.FNVOffset64, r.Branch()), r.CallID())), 36)
	bp := request.BufPool.Get().(*bytes.Buffer) // sent at once over UDP, kept nowhere
	defer request.BufPool.Put(bp)
	bp.Reset()
	bp.Grow(len(in.data) + 96)
	buf := request.AppendForward(&r, bp.AvailableBuffer(), b.outFor("udp", dst.Addr()).via(), branch, "")
	b.stats.Forwarded.Add(1)
	if err := b.send("udp", dst, buf, nil); err != nil {
		b.log.Debug("forward ack", "dst", dst, "err", err)
	}
	return true
}
