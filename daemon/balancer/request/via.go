package request

import (
	"bytes"
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// The top Via: the transaction key (RFC 3261 17.2.3), received and
// rport filled in (RFC 3261 18.2.1, RFC 3581 4), and where responses go
// (RFC 3261 18.2.2, RFC 3581). The parsed backing fills the Via header
// at once (fillReceived); the raw one inserts into the bytes while
// forwarding (appendRportEdit, appendReceivedEdit), at the places Scan
// found.

// fillReceived adds received and rport to the top Via of a parsed
// request.
func fillReceived(via *sip.ViaHeader, src netip.AddrPort) {
	if via.Params == nil {
		via.Params = sip.NewParams()
	}
	if a, err := netip.ParseAddr(via.Host); err != nil || a.Unmap() != src.Addr() {
		via.Params.Add("received", src.Addr().String())
	}
	if v, ok := via.Params.Get("rport"); ok && v == "" {
		via.Params.Add("rport", strconv.Itoa(int(src.Port())))
	}
}

// FillReceived is fillReceived for the balancer's own answers to
// requests it parsed elsewhere.
func FillReceived(via *sip.ViaHeader, src netip.AddrPort) { fillReceived(via, src) }

// appendRportEdit is the raw backing's "=port" after a valueless rport.
func (r *Request) appendRportEdit(buf []byte) []byte {
	buf = append(buf, '=')
	return strconv.AppendUint(buf, uint64(r.src.Port()), 10)
}

// appendReceivedEdit is the raw backing's ";received=IP".
func (r *Request) appendReceivedEdit(buf []byte) []byte {
	buf = append(buf, ";received="...)
	return r.src.Addr().AppendTo(buf)
}

// Rport reports whether the top Via asked for rport.
func (r *Request) Rport() bool {
	if r.req != nil {
		return r.req.Via().Params.Has("rport")
	}
	return r.raw.rportAt >= 0
}

// ReplyAddr is where responses go: the source address when rport was
// asked for (or on a stream), else the source IP and the port of the
// Via's sent-by.
func (r *Request) ReplyAddr() netip.AddrPort {
	if r.req != nil {
		return ReplyAddr(r.req.Via(), r.src, r.stream)
	}
	if r.raw.rportAt >= 0 {
		return r.src
	}
	port := r.raw.viaPort
	if port == 0 {
		port = 5060
	}
	return netip.AddrPortFrom(r.src.Addr(), port)
}

// ReplyAddr is where responses to a parsed request go (Request's
// ReplyAddr for the parsed backing, and the balancer's stateless
// answers).
func ReplyAddr(via *sip.ViaHeader, src netip.AddrPort, stream bool) netip.AddrPort {
	if stream || via.Params.Has("rport") {
		return src
	}
	port := via.Port
	if port == 0 {
		port = 5060
	}
	return netip.AddrPortFrom(src.Addr(), uint16(port))
}

// Branch is the top Via's branch.
func (r *Request) Branch() []byte {
	if r.req != nil {
		b, _ := r.req.Via().Params.Get("branch")
		return []byte(b)
	}
	return r.raw.branch
}

// AppendTxKey appends the key of the server transaction the request
// belongs to (an ACK: its INVITE's) to dst.
func (r *Request) AppendTxKey(dst []byte) []byte {
	method := r.Method()
	if method == sip.ACK {
		method = sip.INVITE
	}
	return r.AppendTxKeyAs(dst, method)
}

// AppendTxKeyAs is AppendTxKey for the transaction of method (a
// CANCEL's INVITE).
func (r *Request) AppendTxKeyAs(dst []byte, method sip.RequestMethod) []byte {
	if r.req == nil {
		return AppendTxKey(dst, r.raw.branch, r.raw.sentBy, int(r.raw.viaPort), string(method))
	}
	via := r.req.Via()
	branch, _ := via.Params.Get("branch")
	if strings.HasPrefix(branch, sip.RFC3261BranchMagicCookie) {
		return AppendTxKey(dst, branch, via.Host, via.Port, string(method))
	}
	// RFC 2543 peer: the dialog identifiers instead.
	dst = append(dst, "2543|"...)
	dst = append(dst, *r.req.CallID()...)
	dst = append(dst, '|')
	dst = append(dst, r.FromTag()...)
	dst = append(dst, '|')
	dst = strconv.AppendUint(dst, uint64(r.req.CSeq().SeqNo), 10)
	dst = append(dst, '|')
	return append(dst, method...)
}

// AppendTxKey appends an RFC 3261 transaction key (17.2.3) to dst: both
// backings, and the balancer's raw ACK and admission scans, build the
// same bytes.
func AppendTxKey[S string | []byte](dst []byte, branch, host S, port int, method string) []byte {
	dst = append(dst, branch...)
	dst = append(dst, '|')
	dst = append(dst, host...)
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, int64(port), 10)
	dst = append(dst, '|')
	return append(dst, method...)
}

// sentByIs reports whether a Via host is src's address, as
// fillReceived judges it (an address, not text: "2001:DB8::9" is
// 2001:db8::9).
func sentByIs(host []byte, src netip.Addr) bool {
	if a, ok := ParseIPv4(host); ok {
		return a == src
	}
	if bytes.IndexByte(host, ':') < 0 {
		return false
	}
	a, err := netip.ParseAddr(string(host))
	return err == nil && a.Unmap() == src
}
