package balancer

import (
	"bytes"
	"github.com/sipedge/sipedge/daemon/balancer/request"
	"net/netip"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// render writes what sipgo's own String writes, for requests and
// responses through both the lean parsers and the full one, and after
// the headers the proxy adds.
func TestRenderMatchesSipgo(t *testing.T) {
	msgs := []string{
		"INVITE sip:svc@192.0.2.10:5060;transport=udp SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP 198.51.100.7:5062;branch=z9hG4bK-1;rport=5062;received=198.51.100.7\r\n" +
			"v: SIP/2.0/TCP [2001:db8::1]:5070;branch=z9hG4bK-2\r\n" +
			"f: \"Caller X\" <sip:caller@198.51.100.7>;tag=abc\r\n" +
			"t: \"Svc\" <sip:svc@192.0.2.10;user=phone>\r\n" +
			"i: call-1@host\r\n" +
			"CSeq: 123456 INVITE\r\n" +
			"Route: <sip:192.0.2.10;lr>, <sip:[2001:db8::2]:5080;lr;transport=tcp>\r\n" +
			"Record-Route: <sip:u:pw@host.example:5090;lr?h=v&x=y>\r\n" +
			"Max-Forwards: 69\r\n" +
			"Contact: <sip:caller@198.51.100.7:5062>\r\n" +
			"Content-Type: application/sdp\r\n" +
			"l: 8\r\n\r\n" +
			"v=0\r\ns=-",
		"BYE sips:[2001:db8::5]:5061 SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP host.example;branch=z9hG4bK-3;x=\"a b\"\r\n" +
			"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
		"OPTIONS tel:+15551234 SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP [::ffff:192.0.2.1]:5060;branch=z9hG4bK-4\r\n" +
			"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: y\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
		"SIP/2.0 180 Ringing\r\n" +
			"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-sb1\r\n" +
			"Via: SIP/2.0/UDP 198.51.100.7:5062;branch=z9hG4bK-1;received=198.51.100.7;rport=5062\r\n" +
			"Record-Route: <sip:192.0.2.10:5060;lr>\r\n" +
			"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: z\r\nCSeq: 1 INVITE\r\n" +
			"Contact: <sip:core@198.51.100.21>\r\nContent-Length: 0\r\n\r\n",
	}
	parsers := map[string]*sip.Parser{
		"lean":     sip.NewParser(sip.WithHeadersParsers(request.LeanHeaderParsers())),
		"response": sip.NewParser(sip.WithHeadersParsers(leanResponseParsers())),
		"full":     sip.NewParser(),
	}
	for name, p := range parsers {
		for i, raw := range msgs {
			m, err := p.ParseSIP([]byte(raw))
			if err != nil {
				t.Fatalf("%s %d: %v", name, i, err)
			}
			if req, ok := m.(*sip.Request); ok {
				// What the proxy adds: its Via, a Record-Route, Max-Forwards.
				via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP",
					Host: "192.0.2.10", Port: 5060, Params: sip.NewParams()}
				via.Params.Add("branch", "z9hG4bK-sb.1")
				req.PrependHeader(via)
				l := newListener(listenAddr{transport: "tcp", addr: netip.MustParseAddrPort("192.0.2.10:5060")})
				req.PrependHeader(&sip.RecordRouteHeader{Address: l.rrURI})
				mf := sip.MaxForwardsHeader(70)
				req.AppendHeader(&mf)
			}
			// One deliberate difference: an IPv4-mapped IPv6 host keeps its
			// brackets (sipgo writes it bare, which reads back as host
			// "::ffff:192.0.2.1:5060" without a port: RFC 5118 4.9).
			mapped := strings.NewReplacer("UDP ::ffff:192.0.2.1:5060", "UDP [::ffff:192.0.2.1]:5060")
			if got, want := string(request.Render(m)), mapped.Replace(m.String()); got != want {
				t.Errorf("%s %d: render\n%q\nsipgo\n%q", name, i, got, want)
			}
			for _, h := range m.(interface{ Headers() []sip.Header }).Headers() {
				var buf bytes.Buffer
				request.HeaderLine(&buf, h)
				if got, want := buf.String(), mapped.Replace(h.String())+"\r\n"; got != want {
					t.Errorf("%s %d: header %q, sipgo %q", name, i, got, want)
				}
			}
		}
	}
}
