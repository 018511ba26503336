package balancer

import (
	"net/netip"

	"github.com/sipedge/sipedge/daemon/balancer/request"
)

// The raw fast paths (ackfast.go, indialog.go, invitefast.go) read a
// request through the request package's raw backing (request.Scan): no
// sipgo parse. What they need of the balancer beyond it is here.

// reqConfig is what the request views need of the balancer.
func (b *Balancer) reqConfig() *request.Config {
	return &request.Config{Local: b.isLocal, MaxHeaders: b.opt.MaxHeaders, MaxURIBytes: b.opt.MaxURIBytes}
}

// scan reads in's request for a raw path; false when it declines (the
// full path then takes it) or the raw paths are off (sip.raw_paths).
func (b *Balancer) scan(in inbound) (request.Request, bool) {
	if b.opt.FullPath {
		return request.Request{}, false
	}
	return request.Scan(in.data, in.src, b.reqCfg)
}

// hop is what rawNextHop found.
type hop int

const (
	hopOK      hop = iota
	hopNone        // addressed to us, and nowhere to go (no dialog, or a loop)
	hopDecline     // the full path must decide (TCP, a host name, ...)
)

// rawNextHop is where r goes over UDP: its next Route, else its
// Request-URI; one that is ours means the dialog's Core (RFC 3261 16.4,
// 16.6 step 6).
func (b *Balancer) rawNextHop(r *request.Request) (netip.AddrPort, hop) {
	h := r.NextHop()
	dst := h.Addr
	switch h.Kind {
	case request.HopDecline, request.HopName:
		return dst, hopDecline
	case request.HopOurs:
		c := b.dialogs.coreOf(string(r.CallID()))
		if c == nil {
			return dst, hopNone
		}
		if c.transport != "udp" {
			return dst, hopDecline
		}
		dst = c.addr
	}
	if b.isLocal(dst) {
		return dst, hopNone
	}
	if b.outFor("udp", dst.Addr()) == nil {
		return dst, hopDecline
	}
	return dst, hopOK
}

// via is our Via on l, for request.AppendForward.
func (l *listener) via() request.Via {
	return request.Via{Transport: l.viaTp, Host: l.host, Port: int(l.addr.Port())}
}
