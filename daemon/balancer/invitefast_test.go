package balancer

import (
	"bufio"
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/sipedge/sipedge/hal/testenv"
)

// rawInvite is the caller's INVITE as the raw path takes it: invite(id)
// without rport, which SIPp and most trunks do not ask for.
func (l *txLab) rawInvite(id string) string {
	return strings.Replace(l.invite(id), ";rport", "", 1)
}

// TestFastInviteMatchesFullPath: an INVITE forwarded from its raw bytes
// reaches the Core as the parsed path forwards it (our Via, then our
// Record-Route, Max-Forwards one less, the rest as received), the caller
// gets the same 100 Trying, and the Core's 200 comes back with the
// caller's Via only.
func TestFastInviteMatchesFullPath(t *testing.T) {
	l := newTxLab(t, 1, nil)
	if !l.b.fastInvite(l.in(l.rawInvite("fast"))) {
		t.Fatal("fast path declined a plain INVITE")
	}
	fast := recvInvite(l)
	fastTrying, _ := l.recv(l.caller, 2*time.Second, "100 Trying", isResponse(100))
	m, err := l.b.parser.ParseSIP([]byte(l.rawInvite("full")))
	if err != nil {
		t.Fatal(err)
	}
	l.onParsed(l.in(l.rawInvite("full")), m)
	full := recvInvite(l)
	fullTrying, _ := l.recv(l.caller, 2*time.Second, "100 Trying", isResponse(100))

	if fast.Recipient.String() != full.Recipient.String() {
		t.Errorf("Request-URI fast %s, full %s", fast.Recipient.String(), full.Recipient.String())
	}
	same := func(what, f, u string) {
		t.Helper()
		if strings.ReplaceAll(f, "fast", "full") != u {
			t.Errorf("%s: fast %q, full %q", what, f, u)
		}
	}
	fv, uv := fast.GetHeaders("Via"), full.GetHeaders("Via")
	if len(fv) != 2 || len(uv) != 2 {
		t.Fatalf("Vias fast %d full %d, want 2", len(fv), len(uv))
	}
	ours := func(v sip.Header) string {
		via := v.(*sip.ViaHeader)
		return fmt.Sprintf("%s %s:%d", via.Transport, via.Host, via.Port)
	}
	if ours(fv[0]) != "UDP "+l.towardCores() || ours(uv[0]) != ours(fv[0]) {
		t.Errorf("our Via fast %q full %q, want UDP %s", ours(fv[0]), ours(uv[0]), l.towardCores())
	}
	same("caller's Via", fv[1].Value(), uv[1].Value())
	if fast.Headers()[0].Name() != "Via" || fast.Headers()[1].Name() != "Record-Route" {
		t.Errorf("fast path's first headers %s, %s; want our Via, then our Record-Route", fast.Headers()[0].Name(), fast.Headers()[1].Name())
	}
	frr, urr := fast.GetHeaders("Record-Route"), full.GetHeaders("Record-Route")
	if len(frr) != 1 || len(urr) != 1 || frr[0].Value() != urr[0].Value() {
		t.Errorf("Record-Route fast %v full %v, want one, the same", frr, urr)
	}
	if *fast.MaxForwards() != 69 || *full.MaxForwards() != 69 {
		t.Errorf("Max-Forwards fast %d full %d, want 69", *fast.MaxForwards(), *full.MaxForwards())
	}
	for _, h := range []string{"From", "To", "Call-ID", "CSeq", "Contact", "Content-Length"} {
		same(h, fast.GetHeader(h).Value(), full.GetHeader(h).Value())
	}
	ft, ut := fastTrying.(*sip.Response), fullTrying.(*sip.Response)
	for _, h := range []string{"Via", "From", "To", "Call-ID", "CSeq"} {
		if ft.GetHeader(h) == nil {
			t.Errorf("100 Trying of the fast path has no %s", h)
			continue
		}
		same("100 Trying's "+h, ft.GetHeader(h).Value(), ut.GetHeader(h).Value())
	}
	if ft.To().Params.Has("tag") {
		t.Error("100 Trying has a To tag")
	}
	for _, req := range []*sip.Request{fast, full} {
		l.send(l.cores[0], reply(req, 200, "OK", "core1", l.cores[0]))
		m, _ := l.recv(l.caller, 2*time.Second, "the 200", isFinal)
		res := m.(*sip.Response)
		if res.StatusCode != 200 || len(res.GetHeaders("Via")) != 1 {
			t.Errorf("caller got %d with %d Vias, want 200 with its own Via only", res.StatusCode, len(res.GetHeaders("Via")))
		}
	}
	if got := l.b.stats.Calls.Load(); got != 2 {
		t.Errorf("calls counted %d, want 2", got)
	}
}

// TestFastInviteRetransmission: the INVITE again is absorbed (the 100
// again to the caller, nothing to the Core).
func TestFastInviteRetransmission(t *testing.T) {
	l := newTxLab(t, 1, nil)
	msg := l.rawInvite("rtx")
	for i := 0; i < 2; i++ {
		if !l.b.fastInvite(l.in(msg)) {
			t.Fatalf("declined (%d)", i)
		}
		l.recv(l.caller, 2*time.Second, "100 Trying", isResponse(100))
	}
	recvInvite(l)
	l.quiet(l.cores[0], 300*time.Millisecond, "the Core after a retransmitted INVITE")
	if got := l.b.stats.Retransmissions.Load(); got != 1 {
		t.Errorf("retransmissions counted %d, want 1", got)
	}
}

// TestFastInviteCancel: a CANCEL of a raw-path INVITE gets its 200, the
// Core gets the CANCEL on the INVITE's branch, and the caller the 487,
// built from the raw request with a To tag of ours.
func TestFastInviteCancel(t *testing.T) {
	l := newTxLab(t, 1, nil)
	inv := l.rawInvite("cx")
	if !l.b.fastInvite(l.in(inv)) {
		t.Fatal("declined")
	}
	fwd := recvInvite(l)
	l.send(l.cores[0], reply(fwd, 180, "Ringing", "core1", l.cores[0]))
	l.recv(l.caller, 2*time.Second, "180", isResponse(180))
	cancel := strings.NewReplacer("INVITE sip:", "CANCEL sip:", "1 INVITE", "1 CANCEL").Replace(inv)
	l.send(l.caller, cancel)
	l.recv(l.caller, 2*time.Second, "200 for the CANCEL", isResponse(200))
	m, _ := l.recv(l.cores[0], 2*time.Second, "CANCEL at the Core", isRequest(sip.CANCEL))
	c := m.(*sip.Request)
	cb, _ := c.Via().Params.Get("branch")
	ib, _ := fwd.Via().Params.Get("branch")
	if cb != ib {
		t.Errorf("CANCEL on branch %q, INVITE on %q", cb, ib)
	}
	l.send(l.cores[0], reply(c, 200, "OK", "core1", l.cores[0]))
	l.send(l.cores[0], reply(fwd, 487, "Request Terminated", "core1", l.cores[0]))
	m, _ = l.recv(l.caller, 2*time.Second, "the 487", isFinal)
	res := m.(*sip.Response)
	if res.StatusCode != 487 {
		t.Fatalf("caller got %d, want 487", res.StatusCode)
	}
	orig, err := sip.NewParser().ParseSIP([]byte(inv))
	if err != nil {
		t.Fatal(err)
	}
	req := orig.(*sip.Request)
	for _, h := range []string{"Via", "From", "Call-ID", "CSeq"} {
		if res.GetHeader(h) == nil || res.GetHeader(h).Value() != req.GetHeader(h).Value() {
			t.Errorf("487 %s = %v, want %q", h, res.GetHeader(h), req.GetHeader(h).Value())
		}
	}
	if !res.To().Params.Has("tag") {
		t.Error("487 has no To tag")
	}
}

// TestFastInviteFailover: the first Core chosen stays silent; the raw
// INVITE goes to the other on a new branch, and its 200 reaches the
// caller.
func TestFastInviteFailover(t *testing.T) {
	l := newTxLab(t, 2, func(o *Options) { o.Retry.AttemptTimeout = 300 * time.Millisecond })
	if !l.b.fastInvite(l.in(l.rawInvite("fo"))) {
		t.Fatal("declined")
	}
	i, first := l.coreRecv(2*time.Second, "the INVITE", isRequest(sip.INVITE))
	j, second := l.coreRecv(3*time.Second, "the INVITE again, failed over", isRequest(sip.INVITE))
	if i == j {
		t.Fatalf("the INVITE went to core%d twice", i+1)
	}
	b1, _ := first.Via().Params.Get("branch")
	b2, _ := second.Via().Params.Get("branch")
	if b1 == b2 {
		t.Errorf("failover on the same branch %q", b1)
	}
	if len(second.GetHeaders("Record-Route")) != 1 || *second.MaxForwards() != 69 || len(second.GetHeaders("Via")) != 2 {
		t.Errorf("failed-over INVITE: %d Record-Routes, Max-Forwards %d, %d Vias; want 1, 69, 2",
			len(second.GetHeaders("Record-Route")), *second.MaxForwards(), len(second.GetHeaders("Via")))
	}
	l.send(l.cores[j], reply(second, 200, "OK", "c", l.cores[j]))
	m, _ := l.recv(l.caller, 2*time.Second, "the 200", isFinal)
	if res := m.(*sip.Response); res.StatusCode != 200 {
		t.Errorf("caller got %d", res.StatusCode)
	}
}

// TestFastInviteToTCPCore: an INVITE taken raw whose Core is over TCP is
// parsed then (parseRaw) and forwarded as the full path does: our TCP
// Via, the Record-Routes of both listeners, Max-Forwards one less.
func TestFastInviteToTCPCore(t *testing.T) {
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tl.Close() })
	l := newTxLab(t, 0, func(o *Options) {
		o.Listen = append(o.Listen, fmt.Sprintf("tcp:127.0.0.1:%d", testenv.FreePort(t)))
		o.Cores = []CoreConfig{{Name: "tcpcore", Address: "tcp:" + tl.Addr().String()}}
	})
	if !l.b.fastInvite(l.in(l.rawInvite("tcp"))) {
		t.Fatal("declined")
	}
	tl.(*net.TCPListener).SetDeadline(time.Now().Add(3 * time.Second))
	var req *sip.Request
	for req == nil {
		conn, err := tl.Accept()
		if err != nil {
			t.Fatalf("no INVITE over TCP: %v", err)
		}
		t.Cleanup(func() { conn.Close() })
		req = readTCPRequest(t, conn, sip.INVITE)
	}
	v := req.Via()
	if v.Transport != "TCP" || len(req.GetHeaders("Via")) != 2 {
		t.Errorf("top Via %q of %d, want ours over TCP of 2", v.Value(), len(req.GetHeaders("Via")))
	}
	if rr := req.GetHeaders("Record-Route"); len(rr) != 2 {
		t.Errorf("Record-Routes %v, want the TCP and the UDP listener's", rr)
	}
	if *req.MaxForwards() != 69 {
		t.Errorf("Max-Forwards %d, want 69", *req.MaxForwards())
	}
}

// readTCPRequest reads requests from conn until one of method; nil if
// the connection ends first.
func readTCPRequest(t *testing.T, conn net.Conn, method sip.RequestMethod) *sip.Request {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	tr := textproto.NewReader(bufio.NewReader(conn))
	for {
		var msg strings.Builder
		for {
			line, err := tr.ReadLine()
			if err != nil {
				return nil
			}
			msg.WriteString(line + "\r\n")
			if line == "" {
				break
			}
		}
		m, err := sip.NewParser().ParseSIP([]byte(msg.String()))
		if err != nil {
			t.Fatalf("Core got what does not parse: %v\n%s", err, msg.String())
		}
		if r, ok := m.(*sip.Request); ok && r.Method == method {
			return r
		}
	}
}

// TestFastInviteDeclines: what the raw INVITE path leaves to the full
// path.
func TestFastInviteDeclines(t *testing.T) {
	l := newTxLab(t, 1, nil)
	caller := l.caller.LocalAddr().String()
	tests := []struct {
		name string
		edit func(string) string
	}{
		{"rport with a value", func(m string) string { return strings.Replace(m, "branch=z9hG4bK-x", "branch=z9hG4bK-x;rport=9", 1) }},
		{"received already, sent-by not the source", func(m string) string {
			return strings.Replace(strings.Replace(m, "branch=z9hG4bK-x", "branch=z9hG4bK-x;received=192.0.2.2", 1), "UDP 127.0.0.1:", "UDP 192.0.2.1:", 1)
		}},
		{"To tag (re-INVITE)", func(m string) string { return strings.Replace(m, ">\r\nCall-ID", ">;tag=9\r\nCall-ID", 1) }},
		{"pre-routed", func(m string) string {
			return strings.Replace(m, "Max-Forwards", "Route: <sip:192.0.2.7;lr>\r\nMax-Forwards", 1)
		}},
		{"no Max-Forwards", func(m string) string { return strings.Replace(m, "Max-Forwards: 70\r\n", "", 1) }},
		{"Max-Forwards 0", func(m string) string { return strings.Replace(m, "Max-Forwards: 70", "Max-Forwards: 0", 1) }},
		{"sips URI", func(m string) string { return strings.Replace(m, "INVITE sip:", "INVITE sips:", 1) }},
		{"tel URI", func(m string) string { return strings.Replace(m, "INVITE sip:svc@127.0.0.1", "INVITE tel:+1555", 1) }},
		{"no host", func(m string) string { return strings.Replace(m, "INVITE sip:svc@127.0.0.1", "INVITE sip:svc@", 1) }},
		{"no CSeq", func(m string) string { return strings.Replace(m, "CSeq: 1 INVITE\r\n", "", 1) }},
		{"CSeq mismatch", func(m string) string { return strings.Replace(m, "1 INVITE", "1 BYE", 1) }},
		{"bad Content-Length", func(m string) string { return strings.Replace(m, "Content-Length: 0", "Content-Length: 9", 1) }},
		{"folded line", func(m string) string { return strings.Replace(m, "Contact:", "Contact:\r\n ", 1) }},
		{"empty sent-by", func(m string) string { return strings.Replace(m, "UDP "+caller+";", "UDP ;", 1) }},
		{"sent-by port out of range", func(m string) string { return strings.Replace(m, "UDP "+caller+";", "UDP 127.0.0.1:70000;", 1) }},
		{"space before the Via parameters", func(m string) string { return strings.Replace(m, "UDP "+caller+";", "UDP "+caller+" ;", 1) }},
		{"Branch capitalised", func(m string) string { return strings.Replace(m, ";branch=", ";Branch=", 1) }},
		{"RPORT capitalised", func(m string) string { return strings.Replace(m, "z9hG4bK-x", "z9hG4bK-x;RPORT", 1) }},
		{"rport = value", func(m string) string { return strings.Replace(m, "z9hG4bK-x", "z9hG4bK-x;rport = 5999", 1) }},
		{"two To lines", func(m string) string {
			return strings.Replace(m, "Call-ID:", "To: <sip:b@192.0.2.1>;tag=2\r\nCall-ID:", 1)
		}},
		{"two Call-IDs", func(m string) string { return strings.Replace(m, "CSeq:", "Call-ID: other\r\nCSeq:", 1) }},
		{"Request-URI with a space", func(m string) string { return strings.Replace(m, "INVITE sip:svc@", "INVITE sip:s vc@", 1) }},
		{"Vias on one line over MaxHeaders", func(m string) string {
			return strings.Replace(m, "From:", "Via: "+strings.Repeat("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-o, ", 130)+"SIP/2.0/UDP 192.0.2.1\r\nFrom:", 1)
		}},
		{"nine Vias", func(m string) string {
			return strings.Replace(m, "From:", strings.Repeat("Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-o\r\n", 8)+"From:", 1)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if l.b.fastInvite(l.in(tc.edit(l.rawInvite("x")))) {
				t.Error("fast path took it")
			}
		})
	}
	l.quiet(l.cores[0], 100*time.Millisecond, "the Core, after declined requests")
	if in := l.in(l.rawInvite("x")); true {
		in.lis = nil // not the sending listener
		if l.b.fastInvite(in) {
			t.Error("fast path took an INVITE from another listener")
		}
	}
}

// recvInvite is the INVITE as it reaches the first Core.
func recvInvite(l *txLab) *sip.Request {
	l.t.Helper()
	m, _ := l.recv(l.cores[0], 2*time.Second, "INVITE at the Core", isRequest(sip.INVITE))
	return m.(*sip.Request)
}

// TestFastPathsFillVia: a caller behind NAT (sent-by not the source
// address, rport asked: RFC 3581) is served by the raw paths as by the
// full one. The forwarded request carries the caller's Via with received
// and rport filled, as the full path fills them; the balancer's own 100
// Trying carries it too and goes to the source port, not to sent-by's
// (5999, where nothing listens); the Core's answer gets back to the
// caller; a failover keeps the filled Via.
func TestFastPathsFillVia(t *testing.T) {
	sentBy := func(l *txLab, m, hostport string) string {
		return strings.Replace(m, "SIP/2.0/UDP "+l.caller.LocalAddr().String(), "SIP/2.0/UDP "+hostport, 1)
	}
	for _, tc := range []struct {
		name string
		edit func(l *txLab, m string) string // of invite(id), which asks for rport
	}{
		{"NAT: rport and received", func(l *txLab, m string) string { return sentBy(l, m, "192.0.2.10:5999") }},
		{"rport only", func(l *txLab, m string) string { return sentBy(l, m, "127.0.0.1:5999") }},
		{"received only", func(l *txLab, m string) string {
			// No rport: responses go to the source address at sent-by's port.
			port := l.caller.LocalAddr().(*net.UDPAddr).Port
			return sentBy(l, strings.Replace(m, ";rport", "", 1), fmt.Sprintf("192.0.2.10:%d", port))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newTxLab(t, 2, func(o *Options) { o.Retry.AttemptTimeout = 300 * time.Millisecond })
			msg := func(id string) string { return tc.edit(l, l.invite(id)) }
			if !l.b.fastInvite(l.in(msg("fast"))) {
				t.Fatal("the raw path declined")
			}
			i, fast := l.coreRecv(2*time.Second, "the INVITE", isRequest(sip.INVITE))
			m, _ := l.recv(l.caller, 2*time.Second, "100 Trying at the source port", isResponse(100))
			trying := m.(*sip.Response)
			full, err := l.b.parser.ParseSIP([]byte(msg("full")))
			if err != nil {
				t.Fatal(err)
			}
			l.onParsed(l.in(msg("full")), full)
			_, fullFwd := l.coreRecv(2*time.Second, "the full path's INVITE", isRequest(sip.INVITE))
			l.recv(l.caller, 2*time.Second, "the full path's 100 Trying", isResponse(100))

			fv, uv := fast.GetHeaders("Via")[1].Value(), fullFwd.GetHeaders("Via")[1].Value()
			if strings.Replace(fv, "fast", "full", 1) != uv {
				t.Errorf("caller's Via forwarded: raw %q, full %q", fv, uv)
			}
			if tv := trying.Via().Value(); strings.Replace(tv, "fast", "full", 1) != uv {
				t.Errorf("100 Trying's Via %q, want %q", tv, strings.Replace(uv, "full", "fast", 1))
			}
			// core i stays silent: the raw INVITE fails over to the other.
			var again *sip.Request
			for again == nil {
				j, r := l.coreRecv(3*time.Second, "the INVITE, failed over", isRequest(sip.INVITE))
				if j != i && r.CallID().Value() == "fast" {
					again = r
				}
			}
			if av := again.GetHeaders("Via")[1].Value(); av != fv {
				t.Errorf("caller's Via after failover %q, first %q", av, fv)
			}
			core := l.cores[1-i]
			l.send(core, reply(again, 200, "OK", "c", core))
			for {
				m, _ := l.recv(l.caller, 2*time.Second, "the 200 at the source port", isFinal)
				if res := m.(*sip.Response); res.CallID().Value() == "fast" {
					if res.StatusCode != 200 {
						t.Errorf("caller got %d", res.StatusCode)
					}
					break
				}
			}
		})
	}
	t.Run("BYE behind NAT", func(t *testing.T) {
		l := newTxLab(t, 1, nil)
		natBye := func(m string) string {
			m = strings.Replace(m, "branch=z9hG4bK-", "rport;branch=z9hG4bK-", 1)
			return strings.Replace(m, "SIP/2.0/UDP "+l.caller.LocalAddr().String(), "SIP/2.0/UDP 192.0.2.10:5999", 1)
		}
		if !l.b.fastInDialog(l.in(l.bye("fast", natBye))) {
			t.Fatal("the raw path declined")
		}
		fast := recvBye(l)
		m, err := l.b.parser.ParseSIP([]byte(l.bye("full", natBye)))
		if err != nil {
			t.Fatal(err)
		}
		l.onParsed(l.in(l.bye("full", natBye)), m)
		full := recvBye(l)
		fv, uv := fast.GetHeaders("Via")[1].Value(), full.GetHeaders("Via")[1].Value()
		if strings.Replace(fv, "fast", "full", 1) != uv || !strings.Contains(uv, "received=127.0.0.1") {
			t.Errorf("caller's Via forwarded: raw %q, full %q", fv, uv)
		}
		l.answer(fast, 200, "OK")
		if m, _ := l.recv(l.caller, 2*time.Second, "the 200 at the source port", isFinal); m.(*sip.Response).StatusCode != 200 {
			t.Errorf("caller got %d", m.(*sip.Response).StatusCode)
		}
	})
}

// TestHandleTakesRawINVITE: an INVITE that comes in on the socket goes
// the raw way (handle -> fastInvite): its bytes reach the Core as they
// came, down to the spacing sipgo's render would have tidied.
func TestHandleTakesRawINVITE(t *testing.T) {
	l := newTxLab(t, 1, nil)
	l.send(l.caller, strings.Replace(l.rawInvite("h"), "Contact:", "X-Spacing:   kept\r\nContact:", 1))
	buf := make([]byte, 65536)
	l.cores[0].SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		n, err := l.cores[0].Read(buf)
		if err != nil {
			t.Fatalf("no INVITE at the Core: %v", err)
		}
		if strings.HasPrefix(string(buf[:n]), "INVITE ") {
			if !strings.Contains(string(buf[:n]), "\r\nX-Spacing:   kept\r\n") {
				t.Errorf("the INVITE was re-rendered, not forwarded from its bytes:\n%s", buf[:n])
			}
			return
		}
	}
}
