package balancer

import (
	"context"
	"github.com/sipedge/sipedge/daemon/balancer/request"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

const shedInvite = "INVITE sip:svc@127.0.0.1:5060 SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.1:5071;branch=z9hG4bK-1;rport\r\n" +
	"v: SIP/2.0/UDP 10.0.0.2:5072;branch=z9hG4bK-0\r\n" +
	"From: \"a;tag=x\" <sip:a@10.0.0.1>;tag=f1\r\n" +
	"To: <sip:svc@127.0.0.1;tag=inuri>\r\n" +
	"Call-ID: c1@x\r\n" +
	"CSeq: 1 INVITE\r\n" +
	"Max-Forwards: 70\r\n" +
	"Content-Length: 0\r\n\r\n"

func TestScanHeaders(t *testing.T) {
	tests := []struct {
		name    string
		msg     string
		toTag   bool
		vias    int
		port    uint16
		rport   bool
		missing bool
	}{
		{"initial INVITE, tag only inside the URI", shedInvite, false, 2, 5071, true, false},
		{"in-dialog (To tag)", strings.Replace(shedInvite, "To: <sip:svc@127.0.0.1;tag=inuri>", "t: <sip:svc@127.0.0.1>;tag=abc", 1), true, 2, 5071, true, false},
		{"no port, no rport", strings.Replace(shedInvite, "10.0.0.1:5071;branch=z9hG4bK-1;rport", "10.0.0.1;branch=z9hG4bK-1", 1), false, 2, 0, false, false},
		{"no Call-ID", strings.Replace(shedInvite, "Call-ID: c1@x\r\n", "", 1), false, 2, 5071, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := scanHeaders([]byte(tc.msg))
			if h.toTag != tc.toTag || len(h.vias) != tc.vias || h.viaPort != tc.port || h.rport != tc.rport {
				t.Errorf("toTag %v vias %d port %d rport %v; want %v %d %d %v", h.toTag, len(h.vias), h.viaPort, h.rport, tc.toTag, tc.vias, tc.port, tc.rport)
			}
			if missing := h.callID == nil || h.from == nil || h.to == nil || h.cseq == nil; missing != tc.missing {
				t.Errorf("missing = %v, want %v", missing, tc.missing)
			}
		})
	}
}

// TestShedNew: with the worker behind (ShedDelay, ShedQueue), a new INVITE is
// answered 503 + Retry-After at once (a well-formed response the parser
// accepts), while in-dialog requests and shallow queues pass through.
func TestShedNew(t *testing.T) {
	b, err := New(Options{Listen: []string{"udp:127.0.0.1:0"}, ShedQueue: 10, ShedDelay: 100 * time.Millisecond, RetryAfter: 7})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	src := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	in := inbound{data: []byte(shedInvite), src: src, lis: b.listeners[0]}

	if b.shedNew(in, 9, 99*time.Millisecond) {
		t.Fatal("shed below the thresholds")
	}
	if b.shedNew(in, 0, time.Second) {
		t.Fatal("shed with nothing queued (a stale lag)")
	}
	dialog := in
	dialog.data = []byte(strings.Replace(shedInvite, "To: <sip:svc@127.0.0.1;tag=inuri>", "To: <sip:svc@127.0.0.1>;tag=abc", 1))
	if b.shedNew(dialog, 100, time.Second) {
		t.Fatal("shed an in-dialog INVITE")
	}
	bye := in
	bye.data = []byte(strings.Replace(shedInvite, "INVITE sip:", "BYE sip:", 1))
	if b.shedNew(bye, 100, time.Second) {
		t.Fatal("shed a BYE")
	}
	if !b.shedNew(in, 1, 100*time.Millisecond) {
		t.Fatal("not shed at the delay threshold")
	}
	peer.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := peer.Read(make([]byte, 4096)); err != nil {
		t.Fatalf("no 503 at the source address: %v", err)
	}
	if !b.shedNew(in, 10, 0) {
		t.Fatal("not shed at the depth threshold")
	}
	peer.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4096)
	n, err := peer.Read(buf) // rport: sent to the source address
	if err != nil {
		t.Fatalf("no 503 at the source address: %v", err)
	}
	msg, err := b.parser.ParseSIP(buf[:n])
	if err != nil {
		t.Fatalf("503 does not parse: %v\n%s", err, buf[:n])
	}
	got := string(buf[:n])
	for _, want := range []string{"SIP/2.0 503 Service Unavailable\r\n", "Retry-After: 7\r\n", ";received=127.0.0.1\r\n",
		"v: SIP/2.0/UDP 10.0.0.2:5072;branch=z9hG4bK-0\r\n", "CSeq: 1 INVITE\r\n", "Call-ID: c1@x\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("503 lacks %q:\n%s", want, got)
		}
	}
	if to := msg.(interface{ String() string }); !strings.Contains(to.String(), "tag=inuri>;tag=sh") {
		t.Errorf("To has no tag of ours:\n%s", got)
	}
	if b.stats.Shed.Load() != 2 {
		t.Errorf("Shed = %d, want 2", b.stats.Shed.Load())
	}
}

// TestStatelessAckAbsorbed: the ACK a caller sends for a shed 503 (its To
// carries the 503's tag) is recognised from its raw bytes and absorbed;
// 2xx ACKs, ACKs with another tag or a forged "sh" tag go on.
func TestStatelessAckAbsorbed(t *testing.T) {
	b, err := New(Options{Listen: []string{"udp:127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	h := scanHeaders([]byte(shedInvite))
	resp := string(h.response(503, "Service Unavailable", "", netip.MustParseAddrPort("10.0.0.1:5071")))
	to := ""
	for _, l := range strings.Split(resp, "\r\n") {
		if strings.HasPrefix(l, "To:") {
			to = l
		}
	}
	ack := func(toLine string) []byte {
		m := strings.Replace(shedInvite, "INVITE sip:", "ACK sip:", 1)
		m = strings.Replace(m, "CSeq: 1 INVITE", "CSeq: 1 ACK", 1)
		return []byte(strings.Replace(m, "To: <sip:svc@127.0.0.1;tag=inuri>", toLine, 1))
	}
	tests := []struct {
		name   string
		msg    []byte
		absorb bool
	}{
		{"ACK of our 503", ack(to), true},
		{"compact To", ack("t:" + strings.TrimPrefix(to, "To:")), true},
		{"a Core's 2xx", ack("To: <sip:svc@127.0.0.1>;tag=core-1234"), false},
		{"forged sh tag", ack("To: <sip:svc@127.0.0.1>;tag=sh123"), false},
		{"no tag", ack("To: <sip:svc@127.0.0.1>"), false},
		{"the INVITE itself", []byte(shedInvite), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := b.stats.StatelessAcks.Load()
			if got := b.absorbStatelessAck(tc.msg); got != tc.absorb {
				t.Errorf("absorbed = %v, want %v", got, tc.absorb)
			}
			if n := b.stats.StatelessAcks.Load() - before; (n == 1) != tc.absorb {
				t.Errorf("counted %d", n)
			}
		})
	}
}

// TestShedSparesRetransmission: under overload, a retransmitted INVITE of
// a call already taken (its server transaction exists, the Core is
// setting the call up) is not refused 503; a new call still is. Both
// kinds of transaction key: an RFC 3261 branch and an RFC 2543 peer's.
func TestShedSparesRetransmission(t *testing.T) {
	l := newTxLab(t, 1, nil)
	for _, tc := range []struct{ name, edit string }{{"RFC 3261 branch", ""}, {"RFC 2543 peer", "old-"}} {
		t.Run(tc.name, func(t *testing.T) {
			id := strings.ReplaceAll(tc.name, " ", "")
			msg := l.invite(id)
			if tc.edit != "" {
				msg = strings.Replace(msg, "branch=z9hG4bK-", "branch="+tc.edit, 1)
			}
			l.send(l.caller, msg)
			l.recv(l.cores[0], 2*time.Second, "INVITE at the Core", isRequest(sip.INVITE))
			shed := l.b.stats.Shed.Load()
			in := inbound{data: []byte(msg), src: l.callerAddr(), lis: l.b.listeners[0]}
			if l.b.shedNew(in, 100, time.Second) {
				t.Fatal("a retransmission of an INVITE being set up on a Core was refused 503")
			}
			fresh := in
			fresh.data = []byte(strings.ReplaceAll(msg, id, id+"-new"))
			if !l.b.shedNew(fresh, 100, time.Second) {
				t.Fatal("a new INVITE was not shed")
			}
			if n := l.b.stats.Shed.Load() - shed; n != 1 {
				t.Errorf("shed %d, want 1", n)
			}
		})
	}
}

// TestViaSentByMatchesParser: the raw sent-by is what sipgo's Via has
// (transaction keys are built from either).
func TestViaSentByMatchesParser(t *testing.T) {
	for _, v := range []string{
		"SIP/2.0/UDP 10.0.0.1:5071;branch=z9hG4bK-1;rport",
		"SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-1",
		"SIP/2.0/TCP [2001:db8::1]:5062;branch=z9hG4bK-1",
		"SIP/2.0/UDP [2001:db8::1];branch=z9hG4bK-1",
		"SIP/2.0/UDP edge.example.net:5080;branch=z9hG4bK-1, SIP/2.0/UDP 10.0.0.2:5072;branch=z9hG4bK-0",
	} {
		msg := strings.Replace(shedInvite, "Via: SIP/2.0/UDP 10.0.0.1:5071;branch=z9hG4bK-1;rport", "Via: "+v, 1)
		m, err := sip.NewParser().ParseSIP([]byte(msg))
		if err != nil {
			t.Fatal(err)
		}
		via := m.(*sip.Request).Via()
		host, port, rport, _ := request.ViaSentBy([]byte(v))
		if string(host) != via.Host || int(port) != via.Port || rport != via.Params.Has("rport") {
			t.Errorf("%s: raw %s %d %v, sipgo %s %d %v", v, host, port, rport, via.Host, via.Port, via.Params.Has("rport"))
		}
	}
}

// TestViaSentByPlain: the sent-bys the raw paths take (plain) and those
// they leave to sipgo.
func TestViaSentByPlain(t *testing.T) {
	for v, want := range map[string]bool{
		"SIP/2.0/UDP 10.0.0.1:5071;branch=z9hG4bK-1":  true,
		"SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-1":       true,
		"SIP/2.0/UDP edge.example.net:5080;rport":     true,
		"SIP/2.0/UDP [2001:db8::1]:5060;branch=z9":    true,
		"SIP/2.0/UDP ;branch=z9hG4bK-1":               false,
		"SIP/2.0/UDP 10.0.0.1:0;branch=z9hG4bK-1":     false,
		"SIP/2.0/UDP 10.0.0.1:70000;branch=z9hG4bK-1": false,
		"SIP/2.0/UDP 10.0.0.1:abc;branch=z9hG4bK-1":   false,
		"SIP/2.0/UDP 10.0.0.1: ;branch=z9hG4bK-1":     false,
		"SIP/2.0/UDP 10.0.0.1:5060 ;branch=z9hG4bK-1": false,
		"SIP/2.0/UDP 10.0.0.1 :5060;branch=z9hG4bK-1": false,
		"SIP/2.0/UDP [2001:db8::1]x;branch=z9":        false,
	} {
		if _, _, _, plain := request.ViaSentBy([]byte(v)); plain != want {
			t.Errorf("%q: plain %v, want %v", v, plain, want)
		}
	}
}

// TestLagMustLast: admission sees a worker's queue delay only once it
// has stayed at ShedDelay or more for ShedDelay/2 without shrinking: a
// worker descheduled for a moment on a busy host leaves a backlog that
// drains (slowly near full load), and calls were refused for it (0.7 %
// of the calls at 4,000 CPS beside stress-ng --cpu 1; 2 of 50,000 in a
// recovery step at the host's sustained rate).
func TestLagMustLast(t *testing.T) {
	const delay = 100 * time.Millisecond
	var ws workerSync
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	steps := []struct {
		now, waited time.Duration
		want        time.Duration
	}{
		{ms(1000), ms(10), ms(10)}, // not behind: the wait as it is
		{ms(1100), ms(150), 0},     // a stall: behind from here, not yet seen
		{ms(1130), ms(140), 0},     // 30 ms behind
		{ms(1150), ms(120), 0},     // 50 ms behind, but draining: judged again from here
		{ms(1180), ms(110), 0},
		{ms(1200), ms(105), 0},       // draining still
		{ms(1210), ms(40), ms(40)},   // caught up
		{ms(1300), ms(120), 0},       // behind again: counts from here
		{ms(1330), ms(160), 0},       // 30 ms, growing
		{ms(1349), ms(170), 0},       // 49 ms
		{ms(1350), ms(200), ms(200)}, // 50 ms behind and not draining: seen
		{ms(1360), ms(180), ms(180)}, // seen while over the delay
		{ms(1370), ms(90), ms(90)},   // caught up
	}
	for i, s := range steps {
		ws.noteLag(s.now, s.now-s.waited, delay)
		if got := time.Duration(ws.lag.Load()); got != s.want {
			t.Fatalf("step %d (at %v, waited %v): lag %v, want %v", i, s.now, s.waited, got, s.want)
		}
	}
}
