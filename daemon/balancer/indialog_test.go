package balancer

import (
	"fmt"
	"github.com/sipedge/sipedge/daemon/balancer/request"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// bye is a BYE from the caller routed through the balancer to the
// first Core; edit changes it.
func (l *txLab) bye(branch string, edit func(string) string) string {
	m := fmt.Sprintf("BYE sip:core@%s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP %s;branch=z9hG4bK-%s\r\n"+
		"From: caller <sip:caller@127.0.0.1>;tag=f1\r\n"+
		"To: <sip:svc@127.0.0.1>;tag=core1\r\n"+
		"Call-ID: bye-1@x\r\n"+
		"CSeq: 2 BYE\r\n"+
		"Route: <sip:%s;lr>\r\n"+
		"Max-Forwards: 70\r\n"+
		"Content-Length: 0\r\n\r\n", l.cores[0].LocalAddr(), l.caller.LocalAddr(), branch, l.addr)
	if edit != nil {
		m = edit(m)
	}
	return m
}

// toUs addresses the BYE to the balancer itself, with no Route.
func (l *txLab) toUs(m string) string {
	m = strings.Replace(m, "BYE sip:core@"+l.cores[0].LocalAddr().String(), "BYE sip:"+l.addr.String(), 1)
	return strings.Replace(m, "Route: <sip:"+l.addr.String()+";lr>\r\n", "", 1)
}

// in is msg as the UDP reader hands it over, from the caller.
// onParsed is the full path for a request the test parsed itself, as
// handle passes it on (request.FromParsed fills received and rport).
func (l *txLab) onParsed(in inbound, m sip.Message) {
	rq := request.FromParsed(m.(*sip.Request), in.src, in.conn != nil, l.b.reqCfg)
	l.b.onRequest(in, &rq)
}

func (l *txLab) in(msg string) inbound {
	return inbound{data: []byte(msg), src: l.callerAddr(), lis: l.b.listeners[0], trusted: true}
}

// quiet fails the test when anything but the start-up probe comes to c
// within d.
func (l *txLab) quiet(c *net.UDPConn, d time.Duration, what string) {
	l.t.Helper()
	if m, _ := l.next(c, d, notProbe); m != nil {
		l.t.Errorf("%s: got %q", what, m.String())
	}
}

// notProbe is any message but the balancer's OPTIONS probe.
func notProbe(m sip.Message) bool { r, ok := m.(*sip.Request); return !ok || r.Method != sip.OPTIONS }

// answer sends the Core's response to req.
func (l *txLab) answer(req *sip.Request, code int, reason string) {
	l.send(l.cores[0], sip.NewResponseFromRequest(req, code, reason, nil).String())
}

// TestFastInDialogMatchesFullPath: a BYE forwarded from its raw bytes
// reaches the Core as the parsed path forwards it, and the Core's 200
// comes back to the caller the same way.
func TestFastInDialogMatchesFullPath(t *testing.T) {
	l := newTxLab(t, 1, nil)
	if !l.b.fastInDialog(l.in(l.bye("fast", nil))) {
		t.Fatal("fast path declined a plain BYE")
	}
	fast := recvBye(l)
	m, err := l.b.parser.ParseSIP([]byte(l.bye("full", nil)))
	if err != nil {
		t.Fatal(err)
	}
	l.onParsed(l.in(l.bye("full", nil)), m)
	full := recvBye(l)

	if fast.Method != sip.BYE || fast.Recipient.String() != full.Recipient.String() {
		t.Errorf("start line fast %s %s, full %s %s", fast.Method, fast.Recipient.String(), full.Method, full.Recipient.String())
	}
	fv, uv := fast.GetHeaders("Via"), full.GetHeaders("Via")
	if len(fv) != 2 || len(uv) != 2 {
		t.Fatalf("Vias fast %d full %d, want 2", len(fv), len(uv))
	}
	ours := func(v sip.Header) string { // our Via without its branch, which differs per request
		via := v.(*sip.ViaHeader)
		return fmt.Sprintf("%s %s:%d", via.Transport, via.Host, via.Port)
	}
	if ours(fv[0]) != ours(uv[0]) || ours(fv[0]) != "UDP "+l.towardCores() {
		t.Errorf("our Via fast %q full %q, want UDP %s", ours(fv[0]), ours(uv[0]), l.towardCores())
	}
	fb, _ := fv[0].(*sip.ViaHeader).Params.Get("branch")
	if !strings.HasPrefix(fb, l.b.branchPrefix) {
		t.Errorf("our branch %q lacks the balancer's prefix %q", fb, l.b.branchPrefix)
	}
	if strings.Replace(fv[1].Value(), "fast", "full", 1) != uv[1].Value() {
		t.Errorf("caller's Via fast %q full %q", fv[1].Value(), uv[1].Value())
	}
	if fast.Route() != nil || full.Route() != nil {
		t.Error("our Route was forwarded")
	}
	if fast.GetHeader("Record-Route") != nil {
		t.Error("an in-dialog request got a Record-Route")
	}
	if *fast.MaxForwards() != 69 || *full.MaxForwards() != 69 {
		t.Errorf("Max-Forwards fast %d full %d, want 69", *fast.MaxForwards(), *full.MaxForwards())
	}
	for _, h := range []string{"From", "To", "Call-ID", "CSeq", "Content-Length"} {
		if fast.GetHeader(h).Value() != full.GetHeader(h).Value() {
			t.Errorf("%s: fast %q full %q", h, fast.GetHeader(h).Value(), full.GetHeader(h).Value())
		}
	}
	for _, req := range []*sip.Request{fast, full} {
		l.answer(req, 200, "OK")
		m, _ := l.recv(l.caller, 2*time.Second, "a response", isFinal)
		res := m.(*sip.Response)
		if res.StatusCode != 200 || len(res.GetHeaders("Via")) != 1 {
			t.Errorf("caller got %d with %d Vias, want 200 with its own Via only", res.StatusCode, len(res.GetHeaders("Via")))
		}
	}
}

// TestFastInDialogRetransmission: a retransmitted BYE gets the Core's
// 200 again from the balancer, and does not reach the Core twice; before
// the 200, it is absorbed.
func TestFastInDialogRetransmission(t *testing.T) {
	l := newTxLab(t, 1, nil)
	msg := l.bye("rtx", nil)
	if !l.b.fastInDialog(l.in(msg)) {
		t.Fatal("declined")
	}
	req := recvBye(l)
	if !l.b.fastInDialog(l.in(msg)) {
		t.Fatal("declined the retransmission")
	}
	l.quiet(l.caller, 100*time.Millisecond, "a retransmission before any response")
	l.answer(req, 200, "OK")
	if m, _ := l.recv(l.caller, 2*time.Second, "the 200", isFinal); m.(*sip.Response).StatusCode != 200 {
		t.Fatalf("caller got %d", m.(*sip.Response).StatusCode)
	}
	if !l.b.fastInDialog(l.in(msg)) {
		t.Fatal("declined the retransmission")
	}
	if m, _ := l.recv(l.caller, 2*time.Second, "an answer to the retransmission", isFinal); m.(*sip.Response).StatusCode != 200 {
		t.Errorf("retransmission answered %d, want the 200 again", m.(*sip.Response).StatusCode)
	}
	l.quiet(l.cores[0], 600*time.Millisecond, "the Core after its 200 (no request again, no retransmission)")
	if got := l.b.stats.Retransmissions.Load(); got != 2 {
		t.Errorf("retransmissions counted %d, want 2", got)
	}
}

// TestFastInDialogTimerF: a next hop that never answers gets the BYE
// retransmitted, and the caller gets the balancer's own 504 when the
// attempt timer runs out (not Timer F's 32 s; not a 408, which RFC 4320
// forbids for a non-INVITE), built from the raw request (its Via, From,
// To with its tag, Call-ID, CSeq).
func TestFastInDialogTimerF(t *testing.T) {
	l := newTxLab(t, 1, func(o *Options) { o.Retry.AttemptTimeout = 1200 * time.Millisecond })
	start := time.Now()
	if !l.b.fastInDialog(l.in(l.bye("tf", nil))) {
		t.Fatal("declined")
	}
	first := recvBye(l)
	again := recvBye(l) // T1 later
	b1, _ := first.Via().Params.Get("branch")
	b2, _ := again.Via().Params.Get("branch")
	if b1 != b2 {
		t.Errorf("retransmission on branch %q, first on %q", b2, b1)
	}
	m, _ := l.recv(l.caller, 3*time.Second, "a final response", isFinal)
	res := m.(*sip.Response)
	if res.StatusCode != 504 {
		t.Fatalf("caller got %d, want 504", res.StatusCode)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("504 after %v, before the attempt timer", d)
	}
	want := l.bye("tf", nil)
	orig, err := sip.NewParser().ParseSIP([]byte(want))
	if err != nil {
		t.Fatal(err)
	}
	req := orig.(*sip.Request)
	if vs := res.GetHeaders("Via"); len(vs) != 1 || vs[0].Value() != req.Via().Value() {
		t.Errorf("504 Vias %v, want the caller's %q only", vs, req.Via().Value())
	}
	for _, h := range []string{"From", "To", "Call-ID", "CSeq"} {
		if res.GetHeader(h) == nil || res.GetHeader(h).Value() != req.GetHeader(h).Value() {
			t.Errorf("504 %s = %v, want %q", h, res.GetHeader(h), req.GetHeader(h).Value())
		}
	}
}

// TestFastInDialogDeclines: what the raw path leaves to the full path.
func TestFastInDialogDeclines(t *testing.T) {
	l := newTxLab(t, 1, nil)
	tests := []struct {
		name string
		edit func(string) string
	}{
		{"no To tag", func(m string) string { return strings.Replace(m, ";tag=core1", "", 1) }},
		{"INVITE", func(m string) string {
			return strings.NewReplacer("BYE sip:", "INVITE sip:", "2 BYE", "2 INVITE").Replace(m)
		}},
		{"ACK", func(m string) string { return strings.NewReplacer("BYE sip:", "ACK sip:", "2 BYE", "2 ACK").Replace(m) }},
		{"CANCEL", func(m string) string {
			return strings.NewReplacer("BYE sip:", "CANCEL sip:", "2 BYE", "2 CANCEL").Replace(m)
		}},
		{"unknown method", func(m string) string { return strings.NewReplacer("BYE sip:", "FOO sip:", "2 BYE", "2 FOO").Replace(m) }},
		{"CSeq method mismatch", func(m string) string { return strings.Replace(m, "2 BYE", "2 INFO", 1) }},
		{"rport with a value", func(m string) string { return strings.Replace(m, "branch=z9hG4bK-x", "branch=z9hG4bK-x;rport=9", 1) }},
		{"received already, sent-by not the source", func(m string) string {
			return strings.Replace(strings.Replace(m, "branch=z9hG4bK-x", "branch=z9hG4bK-x;received=192.0.2.2", 1), "UDP 127.0.0.1:", "UDP 192.0.2.1:", 1)
		}},
		{"Max-Forwards 0", func(m string) string { return strings.Replace(m, "Max-Forwards: 70", "Max-Forwards: 0", 1) }},
		{"no Max-Forwards", func(m string) string { return strings.Replace(m, "Max-Forwards: 70\r\n", "", 1) }},
		{"no From", func(m string) string {
			return strings.Replace(m, "From: caller <sip:caller@127.0.0.1>;tag=f1\r\n", "", 1)
		}},
		{"no Call-ID", func(m string) string { return strings.Replace(m, "Call-ID: bye-1@x\r\n", "", 1) }},
		{"ours, no dialog", l.toUs},
		{"next hop over TCP", func(m string) string {
			return strings.Replace(m, ";lr>\r\n", ";lr>\r\nRoute: <sip:192.0.2.7;transport=tcp;lr>\r\n", 1)
		}},
		{"Request-URI too long", func(m string) string { return strings.Replace(m, "sip:core@", "sip:"+strings.Repeat("u", 600)+"@", 1) }},
		{"bad Content-Length", func(m string) string { return strings.Replace(m, "Content-Length: 0", "Content-Length: 5", 1) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if l.b.fastInDialog(l.in(l.bye("x", tc.edit))) {
				t.Error("fast path took it")
			}
		})
	}
	l.quiet(l.cores[0], 100*time.Millisecond, "the Core, after declined requests")
}

// TestFastInDialogToDialogCore: a BYE addressed to the balancer itself
// (no Route) goes to the Core its dialog is on, and ends the dialog.
func TestFastInDialogToDialogCore(t *testing.T) {
	l := newTxLab(t, 1, nil)
	l.b.dialogs.create("bye-1@x", "f1", l.b.pool.get("core1"))
	l.b.dialogs.confirm("bye-1@x", 0, dialogTarget{calleeTag: "core1"})
	msg := l.bye("own", l.toUs)
	if !l.b.fastInDialog(l.in(msg)) {
		t.Fatal("declined a BYE for a known dialog")
	}
	if m, _ := l.recv(l.cores[0], 2*time.Second, "a request at the dialog's Core", notProbe); m.(*sip.Request).Method != sip.BYE {
		t.Errorf("Core got %s", m.(*sip.Request).Method)
	}
	if l.b.dialogs.coreOf("bye-1@x") != nil {
		t.Error("the dialog is still there after its BYE")
	}
}

// recvBye is the BYE as it reaches the first Core.
func recvBye(l *txLab) *sip.Request {
	l.t.Helper()
	m, _ := l.recv(l.cores[0], 2*time.Second, "BYE at the Core", isRequest(sip.BYE))
	return m.(*sip.Request)
}
