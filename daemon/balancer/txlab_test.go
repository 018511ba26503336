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

// txLab is the balancer in-process between a caller and Cores that are
// plain UDP sockets of the test: every message is the test's own, so the
// transaction layer (timers, retransmissions, late answers) is checked
// exactly, without SIPp's own timers and automatic answers in the way.
type txLab struct {
	t      *testing.T
	b      *Balancer
	addr   *net.UDPAddr // the balancer's UDP listener
	caller *net.UDPConn
	cores  []*net.UDPConn
	ev     *recEvents // the balancer's events (Core state changes)
}

// newTxLab starts a balancer in front of n socket Cores. The Cores do
// not answer OPTIONS: probes are sent once and never judged.
func newTxLab(t *testing.T, n int, mod func(*Options)) *txLab {
	t.Helper()
	l := &txLab{t: t}
	port := testenv.FreePort(t)
	l.addr = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	l.caller = l.socket()
	var cores []CoreConfig
	for i := 0; i < n; i++ {
		c := l.socket()
		l.cores = append(l.cores, c)
		cores = append(cores, CoreConfig{Name: fmt.Sprintf("core%d", i+1), Address: c.LocalAddr().String()})
	}
	opt := Options{
		Listen: []string{fmt.Sprintf("udp:127.0.0.1:%d", port)},
		Probe:  ProbeOptions{Interval: time.Hour, Timeout: time.Hour},
		Retry:  RetryOptions{AttemptTimeout: 5 * time.Second},
		Cores:  cores,
		Logger: testLogger(t),
	}
	if mod != nil {
		mod(&opt)
	}
	ipr := startInProcess(t, opt)
	l.b, l.ev = ipr.b, ipr.ev
	return l
}

// towardCores is the address requests to the Cores leave from: the
// listener's Core-facing twin, or the listener without one.
func (l *txLab) towardCores() string { return coreSideOf(l.b.listeners[0]).addr.String() }

// coreSideOf is lis's Core-facing twin, or lis without one.
func coreSideOf(lis *listener) *listener {
	if lis.twin != nil {
		return lis.twin
	}
	return lis
}

func (l *txLab) socket() *net.UDPConn {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { c.Close() })
	return c
}

// callerAddr is the caller's address as the balancer sees it.
func (l *txLab) callerAddr() netip.AddrPort {
	a := l.caller.LocalAddr().(*net.UDPAddr).AddrPort()
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// send sends msg from c to the balancer.
func (l *txLab) send(c *net.UDPConn, msg string) {
	l.t.Helper()
	if _, err := c.WriteToUDP([]byte(msg), l.addr); err != nil {
		l.t.Fatal(err)
	}
}

// next reads from c until a message want accepts (nil: any) and returns
// it with its arrival time; nil when none came within d. Other messages
// (the start-up probe, provisional responses) are skipped.
func (l *txLab) next(c *net.UDPConn, d time.Duration, want func(sip.Message) bool) (sip.Message, time.Time) {
	l.t.Helper()
	deadline := time.Now().Add(d)
	buf := make([]byte, 65536)
	for {
		c.SetReadDeadline(deadline)
		n, err := c.Read(buf)
		if err != nil {
			return nil, time.Time{}
		}
		m, err := sip.NewParser().ParseSIP(buf[:n])
		if err != nil {
			l.t.Fatalf("the balancer sent a message that does not parse: %v\n%s", err, buf[:n])
		}
		if want == nil || want(m) {
			return m, time.Now()
		}
	}
}

// recv is next that fails the test when nothing came.
func (l *txLab) recv(c *net.UDPConn, d time.Duration, what string, want func(sip.Message) bool) (sip.Message, time.Time) {
	l.t.Helper()
	m, at := l.next(c, d, want)
	if m == nil {
		l.t.Fatalf("no %s within %v", what, d)
	}
	return m, at
}

// coreRecv waits for a request want accepts at any Core and returns the
// Core's index.
func (l *txLab) coreRecv(d time.Duration, what string, want func(sip.Message) bool) (int, *sip.Request) {
	l.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for i, c := range l.cores {
			if m, _ := l.next(c, 20*time.Millisecond, want); m != nil {
				return i, m.(*sip.Request)
			}
		}
	}
	l.t.Fatalf("no %s at any Core within %v", what, d)
	return 0, nil
}

func isRequest(method sip.RequestMethod) func(sip.Message) bool {
	return func(m sip.Message) bool { r, ok := m.(*sip.Request); return ok && r.Method == method }
}

func isResponse(code int) func(sip.Message) bool {
	return func(m sip.Message) bool { r, ok := m.(*sip.Response); return ok && r.StatusCode == code }
}

func isFinal(m sip.Message) bool { r, ok := m.(*sip.Response); return ok && r.StatusCode >= 200 }

// invite is the caller's INVITE; id names its branch, tags and Call-ID.
func (l *txLab) invite(id string) string {
	c := l.caller.LocalAddr().String()
	return "INVITE sip:svc@" + l.addr.String() + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + c + ";branch=z9hG4bK-" + id + ";rport\r\n" +
		"From: <sip:caller@" + c + ">;tag=f-" + id + "\r\n" +
		"To: <sip:svc@" + l.addr.String() + ">\r\n" +
		"Call-ID: " + id + "\r\n" +
		"CSeq: 1 INVITE\r\n" +
		"Contact: <sip:caller@" + c + ">\r\n" +
		"Max-Forwards: 70\r\n" +
		"Content-Length: 0\r\n\r\n"
}

// ackOf is the caller's ACK of a non-2xx final to invite(id): the
// INVITE's branch, the response's To.
func (l *txLab) ackOf(id string, res *sip.Response) string {
	c := l.caller.LocalAddr().String()
	return "ACK sip:svc@" + l.addr.String() + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + c + ";branch=z9hG4bK-" + id + ";rport\r\n" +
		"From: <sip:caller@" + c + ">;tag=f-" + id + "\r\n" +
		res.To().String() + "\r\n" +
		"Call-ID: " + id + "\r\n" +
		"CSeq: 1 ACK\r\n" +
		"Max-Forwards: 70\r\n" +
		"Content-Length: 0\r\n\r\n"
}

// reply is a Core's response to req: To tag tag (none on 100), Contact
// at core, Record-Route copied on 18x and 2xx, extra header lines added.
func reply(req *sip.Request, code int, reason, tag string, core *net.UDPConn, extra ...string) string {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	if code > 100 {
		res.To().Params.Add("tag", tag)
	}
	res.AppendHeader(sip.NewHeader("Contact", "<sip:core@"+core.LocalAddr().String()+">"))
	for _, h := range extra {
		k, v, _ := strings.Cut(h, ":")
		res.AppendHeader(sip.NewHeader(k, strings.TrimSpace(v)))
	}
	return res.String()
}

// collect returns every message c receives within d.
func (l *txLab) collect(c *net.UDPConn, d time.Duration) []sip.Message {
	l.t.Helper()
	var out []sip.Message
	deadline := time.Now().Add(d)
	for {
		m, _ := l.next(c, time.Until(deadline), nil)
		if m == nil {
			return out
		}
		out = append(out, m)
	}
}
