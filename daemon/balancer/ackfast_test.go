package balancer

import (
	"context"
	"fmt"
	"github.com/sipedge/sipedge/daemon/balancer/request"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// ackLab is a started balancer on loopback and a socket playing the Core.
func ackLab(t *testing.T) (*Balancer, *net.UDPConn, netip.AddrPort) {
	t.Helper()
	b, err := New(Options{Listen: []string{"udp:127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	// The listener was bound to port 0: use the real address for Route.
	la := b.listeners[0].udp.LocalAddr().(*net.UDPAddr).AddrPort()
	b.listeners[0].addr = netip.AddrPortFrom(la.Addr().Unmap(), la.Port())
	core, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { core.Close() })
	return b, core, b.listeners[0].addr
}

func ackMsg(lis netip.AddrPort, core net.Addr, edit func(string) string) string {
	m := fmt.Sprintf("ACK sip:core@%s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bK-ack-1\r\n"+
		"From: caller <sip:caller@127.0.0.1:5071>;tag=f1\r\n"+
		"To: <sip:svc@127.0.0.1>;tag=core1\r\n"+
		"Call-ID: ack-1@x\r\n"+
		"CSeq: 1 ACK\r\n"+
		"Route: <sip:%s;lr>\r\n"+
		"Max-Forwards: 70\r\n"+
		"Content-Length: 0\r\n\r\n", core, lis)
	if edit != nil {
		m = edit(m)
	}
	return m
}

// TestFastAckMatchesFullPath: the raw ACK path sends the Core what the
// parsed path sends (our Via with the same derived branch on top, our
// Route gone, Max-Forwards decremented, the rest as received).
func TestFastAckMatchesFullPath(t *testing.T) {
	b, core, lis := ackLab(t)
	src := netip.MustParseAddrPort("127.0.0.1:5071")
	raw := ackMsg(lis, core.LocalAddr(), nil)
	read := func() *sip.Request {
		core.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 4096)
		n, err := core.Read(buf)
		if err != nil {
			t.Fatalf("nothing reached the Core: %v", err)
		}
		m, err := sip.NewParser().ParseSIP(buf[:n])
		if err != nil {
			t.Fatalf("forwarded ACK does not parse: %v\n%s", err, buf[:n])
		}
		return m.(*sip.Request)
	}
	if !b.fastAck(inbound{data: []byte(raw), src: src, lis: b.listeners[0], trusted: true}) {
		t.Fatal("fast path declined a plain 2xx ACK")
	}
	fast := read()
	m, err := b.parser.ParseSIP([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	rq := request.FromParsed(m.(*sip.Request), src, false, b.reqCfg)
	b.forwardStateless(inbound{data: []byte(raw), src: src, lis: b.listeners[0], trusted: true}, &rq)
	full := read()
	if fast.Recipient.String() != full.Recipient.String() {
		t.Errorf("R-URI fast %s full %s", fast.Recipient.String(), full.Recipient.String())
	}
	fv, uv := fast.GetHeaders("Via"), full.GetHeaders("Via")
	if len(fv) != 2 || len(uv) != 2 {
		t.Fatalf("Vias fast %d full %d, want 2", len(fv), len(uv))
	}
	for i := range fv {
		if fv[i].Value() != uv[i].Value() {
			t.Errorf("Via %d: fast %q full %q", i, fv[i].Value(), uv[i].Value())
		}
	}
	if fast.Route() != nil || full.Route() != nil {
		t.Error("our Route was forwarded")
	}
	if *fast.MaxForwards() != 69 || *full.MaxForwards() != 69 {
		t.Errorf("Max-Forwards fast %d full %d, want 69", *fast.MaxForwards(), *full.MaxForwards())
	}
	for _, h := range []string{"From", "To", "Call-ID", "CSeq"} {
		if fast.GetHeader(h).Value() != full.GetHeader(h).Value() {
			t.Errorf("%s: fast %q full %q", h, fast.GetHeader(h).Value(), full.GetHeader(h).Value())
		}
	}
}

// TestFastAckDeclines: forms the raw path leaves to the full path.
func TestFastAckDeclines(t *testing.T) {
	b, core, lis := ackLab(t)
	src := netip.MustParseAddrPort("127.0.0.1:5071")
	tests := []struct {
		name string
		edit func(string) string
	}{
		{"not an ACK", func(m string) string { return strings.Replace(m, "ACK sip:", "BYE sip:", 1) }},
		{"rport with a value", func(m string) string {
			return strings.Replace(m, "branch=z9hG4bK-ack-1", "branch=z9hG4bK-ack-1;rport=5071", 1)
		}},
		{"received already, sent-by not the source", func(m string) string {
			return strings.Replace(m, "UDP 127.0.0.1:5071;branch=z9hG4bK-ack-1", "UDP 10.0.0.9:5071;branch=z9hG4bK-ack-1;received=10.0.0.1", 1)
		}},
		{"RFC 2543 branch", func(m string) string { return strings.Replace(m, "z9hG4bK-ack-1", "old-1", 1) }},
		{"folded header", func(m string) string { return strings.Replace(m, "Call-ID: ack-1@x", "Call-ID:\r\n ack-1@x", 1) }},
		{"host name R-URI, no Route", func(m string) string {
			m = strings.Replace(m, "ACK sip:core@"+core.LocalAddr().String(), "ACK sip:core@core.example", 1)
			return strings.Replace(m, "Route: <sip:"+lis.String()+";lr>\r\n", "", 1)
		}},
		{"ours and another on one Route line", func(m string) string {
			return strings.Replace(m, ";lr>\r\n", ";lr>, <sip:10.0.0.7;lr>\r\n", 1)
		}},
		{"next hop over TCP", func(m string) string {
			return strings.Replace(m, ";lr>\r\n", ";lr>\r\nRoute: <sip:10.0.0.7;transport=tcp;lr>\r\n", 1)
		}},
		{"bad Content-Length", func(m string) string { return strings.Replace(m, "Content-Length: 0", "Content-Length: 5", 1) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if b.fastAck(inbound{data: []byte(ackMsg(lis, core.LocalAddr(), tc.edit)), src: src, lis: b.listeners[0], trusted: true}) {
				t.Error("fast path took it")
			}
		})
	}
	// Max-Forwards 0: taken and dropped.
	zero := ackMsg(lis, core.LocalAddr(), func(m string) string { return strings.Replace(m, "Max-Forwards: 70", "Max-Forwards: 0", 1) })
	if !b.fastAck(inbound{data: []byte(zero), src: src, lis: b.listeners[0], trusted: true}) {
		t.Fatal("declined an ACK with Max-Forwards 0")
	}
	core.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := core.Read(make([]byte, 4096)); err == nil {
		t.Errorf("an ACK with Max-Forwards 0 was forwarded (%d bytes)", n)
	}
}

// parseIPv4 agrees with netip.ParseAddr wherever it answers.
func TestParseIPv4(t *testing.T) {
	for _, s := range []string{"127.0.0.1", "0.0.0.0", "255.255.255.255", "192.0.2.10", "256.1.1.1", "01.2.3.4",
		"1.2.3", "1.2.3.4.5", "1..2.3", "1.2.3.4.", "", "a.b.c.d", "::1", "1.2.3.04", "10.0.0.0"} {
		got, ok := request.ParseIPv4([]byte(s))
		want, err := netip.ParseAddr(s)
		if ok && (err != nil || got != want) {
			t.Errorf("parseIPv4(%q) = %v, netip: %v %v", s, got, want, err)
		}
		if !ok && err == nil && want.Is4() {
			t.Errorf("parseIPv4(%q) declined a valid IPv4 address", s)
		}
	}
}
