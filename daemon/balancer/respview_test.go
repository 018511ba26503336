package balancer

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

const rawOK = "SIP/2.0 200 OK\r\n" +
	"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKsbX.1;rport=5060\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.1:5071;branch=z9hG4bK-1;received=10.0.0.1\r\n" +
	"Record-Route: <sip:127.0.0.1:5060;lr>\r\n" +
	"From: <sip:a@10.0.0.1>;tag=f1\r\n" +
	"To: <sip:svc@127.0.0.1>;tag=core1\r\n" +
	"Call-ID: c1@x\r\n" +
	"CSeq: 1 INVITE\r\n" +
	"Session-Expires: 1800;refresher=uac\r\n" +
	"Content-Length: 4\r\n\r\n" +
	"v=0\n"

func TestScanResponse(t *testing.T) {
	tests := []struct {
		name   string
		msg    string
		ok     bool
		code   int
		branch string
		cancel bool
		se     time.Duration
	}{
		{"200 with body", rawOK, true, 200, "z9hG4bKsbX.1", false, 1800 * time.Second},
		{"180 compact forms", "SIP/2.0 180 Ringing\r\nv: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKsbX.2\r\nt: <sip:b@h>;tag=1\r\ni: c2\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n", true, 180, "z9hG4bKsbX.2", false, 0},
		{"200 to CANCEL", strings.Replace(rawOK, "CSeq: 1 INVITE", "CSeq: 1 CANCEL", 1), true, 200, "z9hG4bKsbX.1", true, 1800 * time.Second},
		{"two Vias on the top line", strings.Replace(rawOK, "rport=5060\r\nVia:", "rport=5060,", 1), true, 200, "z9hG4bKsbX.1", false, 1800 * time.Second},
		{"quoted string in the top Via", strings.Replace(rawOK, "rport=5060", "rport=5060;x=\"a,b\"", 1), false, 0, "", false, 0},
		{"folded header", strings.Replace(rawOK, "Call-ID: c1@x\r\n", "Call-ID:\r\n c1@x\r\n", 1), false, 0, "", false, 0},
		{"Content-Length does not match", strings.Replace(rawOK, "Content-Length: 4", "Content-Length: 9", 1), false, 0, "", false, 0},
		{"no Content-Length", strings.Replace(rawOK, "Content-Length: 4\r\n", "", 1), false, 0, "", false, 0},
		{"no Call-ID", strings.Replace(rawOK, "Call-ID: c1@x\r\n", "", 1), false, 0, "", false, 0},
		{"no branch", strings.Replace(rawOK, ";branch=z9hG4bKsbX.1", "", 1), false, 0, "", false, 0},
		{"bad status", strings.Replace(rawOK, "200 OK", "2x0 OK", 1), false, 0, "", false, 0},
		{"a request", "INVITE sip:a@b SIP/2.0\r\n\r\n", false, 0, "", false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, branch, ok := scanResponse([]byte(tc.msg))
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			if v.code != tc.code || string(branch) != tc.branch || v.cancel != tc.cancel || v.sessionExpires() != tc.se {
				t.Errorf("code %d branch %q cancel %v se %v; want %d %q %v %v", v.code, branch, v.cancel, v.sessionExpires(), tc.code, tc.branch, tc.cancel, tc.se)
			}
		})
	}
}

// TestRawForwardMatchesParsed: the raw path forwards the same message the
// parsed path would (our Via removed, the rest intact), with the Vias on
// separate lines or joined on one, and toLine gives the To header for our
// ACK.
func TestRawForwardMatchesParsed(t *testing.T) {
	for _, msg := range []string{rawOK, strings.Replace(rawOK, "rport=5060\r\nVia:", "rport=5060 ,  ", 1)} {
		t.Run("", func(t *testing.T) { testRawForward(t, msg) })
	}
}

func testRawForward(t *testing.T, rawOK string) {
	v, _, ok := scanResponse([]byte(rawOK))
	if !ok {
		t.Fatal("scan declined")
	}
	fwd := string(v.forward())
	if strings.Contains(fwd, "z9hG4bKsbX.1") || !strings.Contains(fwd, "Via: SIP/2.0/UDP 10.0.0.1:5071;branch=z9hG4bK-1") {
		t.Fatalf("our Via not removed, or the next one lost:\n%s", fwd)
	}
	if string(v.forward()) != fwd {
		t.Fatal("forward is not stable")
	}
	p := sip.NewParser()
	rawMsg, err := p.ParseSIP(v.forward())
	if err != nil {
		t.Fatalf("forwarded response does not parse: %v", err)
	}
	msg, _ := p.ParseSIP([]byte(rawOK))
	parsed := respView{res: msg.(*sip.Response)}
	refMsg, _ := p.ParseSIP(parsed.forward())
	raw, ref := rawMsg.(*sip.Response), refMsg.(*sip.Response)
	for _, h := range []string{"Via", "Record-Route", "From", "To", "Call-ID", "CSeq"} {
		if a, b := raw.GetHeader(h).Value(), ref.GetHeader(h).Value(); a != b {
			t.Errorf("%s: raw path %q, parsed path %q", h, a, b)
		}
	}
	if string(raw.Body()) != "v=0\n" {
		t.Errorf("body %q", raw.Body())
	}
	if v.toLine() != "To: <sip:svc@127.0.0.1>;tag=core1" || parsed.toLine() != v.toLine() {
		t.Errorf("toLine raw %q parsed %q", v.toLine(), parsed.toLine())
	}
}
