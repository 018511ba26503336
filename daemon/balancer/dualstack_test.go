package balancer

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/sipedge/sipedge/hal/testenv"
)

// TestDualStackCalls: a call set up, confirmed and ended through a
// balancer listening on 127.0.0.1 and [::1] (one port), for an IPv6
// caller and Core, and across families both ways (issue 16 item 5). The
// Core must get the INVITE with our Record-Route for its side on top
// (two when the families differ: the Core's side, then the caller's),
// the ACK and the BYE routed by our own Routes (IPv6 ones included)
// with those Routes gone, and the caller the BYE's 200. Before, the
// IPv6 call's BYE, whose Route <sip:[::1]:PORT;lr> was not recognised
// as ours, got 404 and the call stayed up at the Core.
func TestDualStackCalls(t *testing.T) {
	testenv.MustHaveIPv6Loopback(t)
	for _, c := range []struct{ name, caller, core string }{
		{"v6", "::1", "::1"},
		{"v4-caller-v6-core", "127.0.0.1", "::1"},
		{"v6-caller-v4-core", "::1", "127.0.0.1"},
	} {
		t.Run(c.name, func(t *testing.T) { dualStackCall(t, c.caller, c.core) })
	}
}

func dualStackCall(t *testing.T, callerIP, coreIP string) {
	port := testenv.FreePort(t)
	sock := func(ip string) *net.UDPConn {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	caller, core := sock(callerIP), sock(coreIP)
	opt := Options{
		Listen: []string{fmt.Sprintf("udp:127.0.0.1:%d", port), fmt.Sprintf("udp:[::1]:%d", port)},
		Probe:  ProbeOptions{Interval: time.Hour, Timeout: time.Hour},
		Retry:  RetryOptions{AttemptTimeout: 5 * time.Second},
		Cores:  []CoreConfig{{Name: "core1", Address: core.LocalAddr().String()}},
		Logger: testLogger(t),
	}
	testOptions(t, &opt)
	startInProcess(t, opt)
	l := &txLab{t: t}
	bal := func(ip string) *net.UDPAddr { return &net.UDPAddr{IP: net.ParseIP(ip), Port: port} }
	hp := func(a net.Addr) string {
		ap := a.(*net.UDPAddr).AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
	}
	callerBal, coreBal := hp(bal(callerIP)), hp(bal(coreIP))
	send := func(c *net.UDPConn, to *net.UDPAddr, msg string) {
		t.Helper()
		if _, err := c.WriteToUDP([]byte(msg), to); err != nil {
			t.Fatal(err)
		}
	}
	id := "ds-" + strings.ReplaceAll(callerIP+coreIP, ":", "")
	me := hp(caller.LocalAddr())
	send(caller, bal(callerIP), "INVITE sip:svc@"+callerBal+" SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP "+me+";branch=z9hG4bK-"+id+";rport\r\nMax-Forwards: 70\r\n"+
		"From: <sip:caller@"+me+">;tag=f-"+id+"\r\nTo: <sip:svc@"+callerBal+">\r\nCall-ID: "+id+"\r\n"+
		"CSeq: 1 INVITE\r\nContact: <sip:caller@"+me+">\r\nContent-Length: 0\r\n\r\n")
	_, inv := l.coreRecv1(core, "INVITE")
	wantRR := []string{"<sip:" + coreBal + ";lr>"}
	if callerBal != coreBal {
		wantRR = append(wantRR, "<sip:"+callerBal+";lr>")
	}
	if got := values(inv, "Record-Route"); strings.Join(got, ", ") != strings.Join(wantRR, ", ") {
		t.Errorf("INVITE at the Core: Record-Route %q, want %q", got, wantRR)
	}
	send(core, bal(coreIP), reply(inv, 200, "OK", "t-"+id, core))
	res, _ := l.recv(caller, 3*time.Second, "200 to the INVITE", isResponse(200))
	ok := res.(*sip.Response)
	// The caller's route set: the 2xx's Record-Route, reversed (RFC 3261 12.1.2).
	rr := values(ok, "Record-Route")
	var route []string
	for i := len(rr) - 1; i >= 0; i-- {
		route = append(route, rr[i])
	}
	coreURI := "sip:core@" + hp(core.LocalAddr())
	inDialog := func(method string, cseq int, branch string) string {
		return method + " " + coreURI + " SIP/2.0\r\nVia: SIP/2.0/UDP " + me + ";branch=z9hG4bK-" + branch + ";rport\r\n" +
			"Max-Forwards: 70\r\nRoute: " + strings.Join(route, ", ") + "\r\n" +
			"From: <sip:caller@" + me + ">;tag=f-" + id + "\r\n" + ok.To().String() + "\r\nCall-ID: " + id + "\r\n" +
			fmt.Sprintf("CSeq: %d %s\r\nContent-Length: 0\r\n\r\n", cseq, method)
	}
	send(caller, bal(callerIP), inDialog("ACK", 1, id+"-ack"))
	_, ack := l.coreRecv1(core, "ACK")
	send(caller, bal(callerIP), inDialog("BYE", 2, id+"-bye"))
	_, bye := l.coreRecv1(core, "BYE")
	for _, r := range []*sip.Request{ack, bye} {
		if got := values(r, "Route"); len(got) != 0 {
			t.Errorf("%s at the Core still carries our Routes %q", r.Method, got)
		}
	}
	send(core, bal(coreIP), reply(bye, 200, "OK", "t-"+id, core))
	l.recv(caller, 3*time.Second, "200 to the BYE", isResponse(200))
}

// coreRecv1 waits for a request with method at the Core socket c.
func (l *txLab) coreRecv1(c *net.UDPConn, method sip.RequestMethod) (netip.AddrPort, *sip.Request) {
	l.t.Helper()
	m, _ := l.recv(c, 3*time.Second, string(method)+" at the Core", isRequest(method))
	return netip.AddrPort{}, m.(*sip.Request)
}

// values is every value of the header name in m, in order (comma lists
// split).
func values(m sip.Message, name string) []string {
	var out []string
	for _, h := range m.(interface{ GetHeaders(string) []sip.Header }).GetHeaders(name) {
		for _, v := range strings.Split(h.Value(), ",") {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}
