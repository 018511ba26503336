package balancer

import (
	"bytes"
	"strconv"

	"github.com/emiago/sipgo/sip"
)

// A new call's INVITE is the one request of a call that needs more than
// its next hop: a 100 Trying, a Core chosen from the pool, our
// Record-Route, a dialog entry, and what our own answers (CANCEL's 487,
// Timer C's 408, 503) and our ACK and CANCEL toward the Core will need.
// All of it can be cut from the bytes as received, so fastInvite does it
// without sipgo's parse, with the same transaction structures, timers
// and response handling as the full path (attemptScanned, routeNew). An
// attempt that must leave by another listener or over TCP parses the
// request then (parseRaw).

// fastInvite handles a new call's INVITE from its raw bytes; false when
// the full path must take it: not UDP, not on the listener that sends,
// a To tag (re-INVITE), a Route not ours (pre-routed), no Max-Forwards
// or none left, a Request-URI that is not a plain sip: URI, or anything
// scanRequest declines.
func (b *Balancer) fastInvite(in inbound) bool {
	if in.conn != nil || in.lis != b.udpOut || !bytes.HasPrefix(in.data, []byte("INVITE ")) {
		return false
	}
	r, ok := b.scanRequest(in)
	if !ok || r.toTag || r.mf <= 0 || r.next != nil || !plainSIPURI(r.ruri) {
		return false
	}
	var kb [128]byte
	key := appendTxKey(kb[:0], r.branch, r.sentBy, int(r.viaPort), string(sip.INVITE))
	if st, ok := getBytes(b.stx, key); ok {
		b.absorb(st)
		return true
	}
	if !b.hasRoom(capTransactions, in.trusted) {
		return false // the full path answers 503
	}
	resp, ok := rawResponder(&r)
	if !ok {
		return false
	}
	// One string for the Call-ID and the caller's tag (the dialog keeps both).
	ids := string(r.callID) + string(r.fromTag)
	st := &serverTx{b: b, key: string(key), method: sip.INVITE, callID: ids[:len(r.callID)], callerTag: ids[len(r.callID):],
		lis: in.lis, dst: r.replyAddr(), raw: in.data, trusted: in.trusted,
		hdr: resp.hdr, toLine: resp.toLine, toTag: resp.toTag}
	st.mu.Lock()
	defer st.mu.Unlock()
	b.stx.put(st.key, st)
	b.routeNew(st, &r)
	b.trying(st, resp)
	return true
}

// plainSIPURI reports whether u is a sip: URI with a host, which is what
// the full path's intake (validateRequest) lets through; anything else
// is left to it (416, 400).
func plainSIPURI(u []byte) bool {
	if len(u) < 5 || !bytes.EqualFold(u[:4], []byte("sip:")) {
		return false
	}
	host := u[4:]
	if at := bytes.IndexByte(host, '@'); at >= 0 {
		host = host[at+1:]
	}
	if len(host) == 0 {
		return false
	}
	c := host[0]
	return c == '[' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// rawResponder is newResponder from the request's bytes: its Via lines
// (the top one with received and rport filled), From, Call-ID and CSeq
// as received, and its To line, for responses of our own. The request
// was scanned (scanRequest): each is there, on one line. False past
// eight Via lines.
func rawResponder(r *rawRequest) (responder, bool) {
	p := r.p
	var vias [8]lineCut
	nvia := 0
	var from, callID, cseq, to lineCut
	for i := r.eol + 1; ; {
		h, last, ok := nextHeader(p, i)
		if !ok || last {
			break
		}
		i = h.next
		if h.colon <= 0 {
			continue
		}
		line := lineCut{h.start, h.start + len(h.line)} // without its CRLF
		switch name := h.name; {
		case hdrIs(name, "Via", 'v'):
			if nvia == len(vias) {
				return responder{}, false
			}
			vias[nvia] = line
			nvia++
		case from.to == 0 && hdrIs(name, "From", 'f'):
			from = line
		case callID.to == 0 && hdrIs(name, "Call-ID", 'i'):
			callID = line
		case cseq.to == 0 && hdrIs(name, "CSeq", 0):
			cseq = line
		case to.to == 0 && hdrIs(name, "To", 't'):
			to = line
		}
	}
	var arr [1024]byte
	buf := arr[:0]
	for _, l := range vias[:nvia] {
		buf = append(r.appendRange(buf, l.from, l.to), "\r\n"...)
	}
	for _, l := range [...]lineCut{from, callID, cseq} {
		buf = append(r.appendRange(buf, l.from, l.to), "\r\n"...)
	}
	n := len(buf)
	buf = r.appendRange(buf, to.from, to.to)
	all := string(buf)
	res := responder{hdr: all[:n], toLine: all[n:]}
	var tag [16]byte
	res.toTag = string(strconv.AppendUint(append(tag[:0], "sb"...), mix64(fnv1a(fnv1a(fnvOffset64, res.toLine), res.hdr)), 36))
	return res, true
}
