package balancer

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sipedge/sipedge/daemon/internal/daemontest"
	"github.com/sipedge/sipedge/hal/testenv"
)

// tcpLab is the balancer in-process with a TCP listener on loopback, and
// the test's own TCP clients from loopback addresses of its choosing
// (127.0.0.2, ...: each a source of its own for the caps).
type tcpLab struct {
	t    *testing.T
	b    *Balancer
	addr string // the balancer's TCP listener
}

func newTCPLab(t *testing.T, mod func(*Options)) *tcpLab {
	t.Helper()
	port := testenv.FreePort(t)
	l := &tcpLab{t: t, addr: fmt.Sprintf("127.0.0.1:%d", port)}
	opt := Options{
		Listen: []string{"tcp:" + l.addr},
		Probe:  ProbeOptions{Interval: time.Hour, Timeout: time.Hour},
		Logger: testLogger(t),
	}
	if mod != nil {
		mod(&opt)
	}
	l.b = startInProcess(t, opt).b
	return l
}

// dial connects from the loopback address ip.
func (l *tcpLab) dial(ip string) *net.TCPConn {
	l.t.Helper()
	d := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", l.addr)
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// refused dials from ip and fails the test unless the balancer closes
// the connection at once (the reset may already fail the dial).
func (l *tcpLab) refused(ip string) {
	l.t.Helper()
	d := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", l.addr)
	if err != nil {
		if !errors.Is(err, syscall.ECONNRESET) {
			l.t.Fatal(err)
		}
		return
	}
	defer c.Close()
	closedWithin(l.t, c, time.Second)
}

// options is an OPTIONS to the balancer itself with Max-Forwards 0: it
// answers 200 without a Core. id makes the transaction unique.
func (l *tcpLab) options(from, id string) string {
	return "OPTIONS sip:" + l.addr + " SIP/2.0\r\n" +
		"Via: SIP/2.0/TCP " + from + ":5060;branch=z9hG4bK-" + id + "\r\n" +
		"From: <sip:probe@" + from + ">;tag=f-" + id + "\r\n" +
		"To: <sip:" + l.addr + ">\r\n" +
		"Call-ID: " + id + "\r\n" +
		"CSeq: 1 OPTIONS\r\n" +
		"Max-Forwards: 0\r\n" +
		"Content-Length: 0\r\n\r\n"
}

func (l *tcpLab) write(c net.Conn, s string) {
	l.t.Helper()
	if _, err := c.Write([]byte(s)); err != nil {
		l.t.Fatalf("write: %v", err)
	}
}

// response reads one response from r within d.
func (l *tcpLab) response(c net.Conn, r *bufio.Reader, d time.Duration) *sip.Response {
	l.t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	data, err := readStreamMessage(r, 65535, nil)
	if err != nil {
		l.t.Fatalf("no response within %v: %v", d, err)
	}
	m, err := sip.NewParser().ParseSIP(data)
	res, ok := m.(*sip.Response)
	if err != nil || !ok {
		l.t.Fatalf("not a response (%v):\n%s", err, data)
	}
	return res
}

// closedWithin waits until the balancer has closed c (EOF or reset, any
// bytes before it read and dropped) and returns how long that took; it
// fails the test when c is still open after d.
func closedWithin(t *testing.T, c net.Conn, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(start.Add(d))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("connection %s still open after %v", c.LocalAddr(), d)
		}
		return time.Since(start)
	}
}

// openWithin fails the test when c is closed (or gets anything) within d.
func openWithin(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	if n, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection %s: read %d, %v; want it open and quiet", c.LocalAddr(), n, err)
	}
}

func (l *tcpLab) waitOpen(in, out int) {
	l.t.Helper()
	daemontest.WaitFor(l.t, 2*time.Second, fmt.Sprintf("%d in, %d out TCP connections open", in, out), func() bool {
		i, o := l.b.TCPConnections()
		return i == in && o == out
	})
}

func (l *tcpLab) stat(name string) uint64 {
	l.t.Helper()
	v, ok := l.b.Stats().Snapshot()[name]
	if !ok {
		l.t.Fatalf("no stat %q", name)
	}
	return v
}

// TestTCPIdleTimeout: a connection that carries a message (read, and its
// answer written) at intervals shorter than the idle timeout stays open
// for several timeouts in all; once quiet it is closed after the
// timeout, and counted.
func TestTCPIdleTimeout(t *testing.T) {
	const idle = 600 * time.Millisecond
	l := newTCPLab(t, func(o *Options) { o.TCPIdleTimeout, o.TCPMessageTimeout = idle, 100*time.Millisecond })
	c := l.dial("127.0.0.2")
	r := bufio.NewReader(c)
	start := time.Now()
	for i := 0; i < 7; i++ { // 6 x idle/3 between them: two idle timeouts
		if i > 0 {
			time.Sleep(idle / 3)
		}
		l.write(c, l.options("127.0.0.2", fmt.Sprintf("idle-%d", i)))
		if res := l.response(c, r, time.Second); res.StatusCode != 200 {
			t.Fatalf("OPTIONS %d answered %d", i, res.StatusCode)
		}
	}
	if time.Since(start) < 2*idle {
		t.Fatalf("the loop took %v: not two idle timeouts", time.Since(start))
	}
	// The last message was written before its answer was read here.
	if d := closedWithin(t, c, 5*idle); d < idle-100*time.Millisecond {
		t.Errorf("closed %v after the last message, before the idle timeout %v", d, idle)
	}
	l.waitOpen(0, 0)
	if n := l.stat("tcp_closed_idle"); n != 1 {
		t.Errorf("tcp_closed_idle = %d, want 1", n)
	}
}

// TestTCPDialledIdleTimeout: a connection the balancer dialled to a TCP
// Core (its probe) is closed by the same idle rule.
func TestTCPDialledIdleTimeout(t *testing.T) {
	core, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer core.Close()
	const idle = 300 * time.Millisecond
	l := newTCPLab(t, func(o *Options) {
		o.TCPIdleTimeout, o.TCPMessageTimeout = idle, 100*time.Millisecond
		o.Cores = []CoreConfig{{Name: "core1", Address: "tcp:" + core.Addr().String()}}
	})
	core.(*net.TCPListener).SetDeadline(time.Now().Add(3 * time.Second))
	c, err := core.Accept()
	if err != nil {
		t.Fatalf("the balancer did not dial its TCP Core: %v", err)
	}
	defer c.Close()
	if _, err := bufio.NewReader(c).ReadString('\n'); err != nil { // the probe's start line
		t.Fatal(err)
	}
	l.waitOpen(0, 1)
	if d := closedWithin(t, c, 5*idle); d < idle/2 {
		t.Errorf("dialled connection closed after %v, before the idle timeout %v", d, idle)
	}
	l.waitOpen(0, 0)
	if n := l.stat("tcp_closed_idle"); n != 1 {
		t.Errorf("tcp_closed_idle = %d, want 1", n)
	}
}

// TestTCPMaxConnections: past TCPMaxConnections the next inbound
// connection is closed at once and counted; a slot given back is taken
// again; an exempt source is never refused.
func TestTCPMaxConnections(t *testing.T) {
	const max = 3
	l := newTCPLab(t, func(o *Options) {
		o.TCPMaxConnections = max
		o.TCPExempt = []netip.Prefix{netip.MustParsePrefix("127.0.0.9/32")}
	})
	var conns []*net.TCPConn
	for i := 0; i < max; i++ {
		conns = append(conns, l.dial(fmt.Sprintf("127.0.0.%d", 2+i)))
	}
	l.waitOpen(max, 0)
	l.refused("127.0.0.6")
	if n := l.stat("tcp_refused_max_connections"); n != 1 {
		t.Errorf("tcp_refused_max_connections = %d, want 1", n)
	}
	for _, c := range conns {
		openWithin(t, c, 20*time.Millisecond)
	}
	exempt := l.dial("127.0.0.9")
	l.waitOpen(max+1, 0)
	openWithin(t, exempt, 50*time.Millisecond)

	conns[0].Close()
	exempt.Close()
	l.waitOpen(max-1, 0)
	again := l.dial("127.0.0.7")
	l.waitOpen(max, 0)
	openWithin(t, again, 50*time.Millisecond)
	if n := l.stat("tcp_refused_max_connections"); n != 1 {
		t.Errorf("tcp_refused_max_connections = %d after a slot was given back, want 1", n)
	}

	// A reload of the trusted networks takes effect for new connections.
	l.b.SetTCPExempt(nil)
	l.refused("127.0.0.9")
	l.b.SetTCPExempt([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/24")})
	openWithin(t, l.dial("127.0.0.9"), 50*time.Millisecond)
	if n := l.stat("tcp_refused_max_connections"); n != 2 {
		t.Errorf("tcp_refused_max_connections = %d, want 2", n)
	}
}

// TestTCPPerSource: one source gets TCPMaxPerSource connections, the
// next is refused while other sources still get theirs; a Core's
// address is exempt; a source the screen drops (banned) is refused.
func TestTCPPerSource(t *testing.T) {
	l := newTCPLab(t, func(o *Options) {
		o.TCPMaxPerSource = 2
		o.Cores = []CoreConfig{{Name: "core1", Address: fmt.Sprintf("tcp:127.0.0.4:%d", testenv.FreePort(t))}}
		o.Screen = func(src netip.AddrPort, _ string, data []byte) Verdict {
			return Verdict{Drop: data == nil && src.Addr() == netip.MustParseAddr("127.0.0.5")}
		}
	})
	a1, a2 := l.dial("127.0.0.2"), l.dial("127.0.0.2")
	l.waitOpen(2, 0)
	l.refused("127.0.0.2")
	if n := l.stat("tcp_refused_per_source"); n != 1 {
		t.Errorf("tcp_refused_per_source = %d, want 1", n)
	}
	l.dial("127.0.0.3")
	for i := 0; i < 3; i++ {
		l.dial("127.0.0.4") // the Core
	}
	l.waitOpen(6, 0)
	l.refused("127.0.0.5")
	if n := l.stat("tcp_refused_banned"); n != 1 {
		t.Errorf("tcp_refused_banned = %d, want 1", n)
	}
	openWithin(t, a1, 20*time.Millisecond)
	a2.Close()
	l.waitOpen(5, 0)
	b := l.dial("127.0.0.2")
	l.waitOpen(6, 0)
	openWithin(t, b, 50*time.Millisecond)
	if got := l.stat("tcp_refused_per_source"); got != 1 {
		t.Errorf("tcp_refused_per_source = %d after the source closed one, want 1", got)
	}
	got := l.metrics()
	for k, want := range map[string]float64{
		`sipedge_sip_tcp_connections{direction="in"}`:             6,
		`sipedge_sip_tcp_connections{direction="out"}`:            0,
		`sipedge_sip_tcp_refused_total{reason="per_source"}`:      1,
		`sipedge_sip_tcp_refused_total{reason="banned"}`:          1,
		`sipedge_sip_tcp_refused_total{reason="max_connections"}`: 0,
		`sipedge_sip_tcp_closed_total{reason="peer"}`:             1,
	} {
		if v, ok := got[k]; !ok || v != want {
			t.Errorf("%s = %v (exported: %v), want %v", k, v, ok, want)
		}
	}
}

// metrics gathers the balancer's collector (pedantic: descriptions and
// metrics must agree) as name{label="value"} -> value.
func (l *tcpLab) metrics() map[string]float64 {
	l.t.Helper()
	return collected(l.t, l.b)
}

// collected gathers b's collector (pedantic) as name{label="value"} ->
// value.
func collected(t testing.TB, b *Balancer) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(b))
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			k := f.GetName()
			if lp := m.GetLabel(); len(lp) == 1 {
				k += fmt.Sprintf("{%s=%q}", lp[0].GetName(), lp[0].GetValue())
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			out[k] = v
		}
	}
	return out
}

// TestTCPScreenDropCloses: a message the screen drops over TCP (a
// source banned since its connection opened, a scanner) closes its
// connection; one it refuses with a code is answered and the connection
// stays.
func TestTCPScreenDropCloses(t *testing.T) {
	l := newTCPLab(t, func(o *Options) {
		o.Screen = func(_ netip.AddrPort, _ string, data []byte) Verdict {
			switch {
			case strings.Contains(string(data), "drop-me"):
				return Verdict{Drop: true}
			case strings.Contains(string(data), "refuse-me"):
				return Verdict{Code: 403, Reason: "Forbidden"}
			}
			return Verdict{}
		}
	})
	c := l.dial("127.0.0.2")
	r := bufio.NewReader(c)
	l.write(c, l.options("127.0.0.2", "refuse-me"))
	if res := l.response(c, r, time.Second); res.StatusCode != 403 {
		t.Fatalf("refused request answered %d, want 403", res.StatusCode)
	}
	l.write(c, l.options("127.0.0.2", "drop-me"))
	closedWithin(t, c, time.Second)
	l.waitOpen(0, 0)
	if n := l.stat("tcp_closed_screened"); n != 1 {
		t.Errorf("tcp_closed_screened = %d, want 1", n)
	}
}

// TestTCPMessageTimeout: a message trickled a byte at a time (a
// slowloris) is cut TCPMessageTimeout after its first byte, though bytes
// keep coming well within the idle timeout; messages that each complete
// in time go on for longer than that in all (the clock is per message).
func TestTCPMessageTimeout(t *testing.T) {
	const msgTimeout = 600 * time.Millisecond
	l := newTCPLab(t, func(o *Options) { o.TCPIdleTimeout, o.TCPMessageTimeout = 10*time.Second, msgTimeout })

	ok := l.dial("127.0.0.2")
	r := bufio.NewReader(ok)
	for i := 0; i < 5; i++ { // each message in 1/3 of the timeout, 5/3 of it in all
		msg := l.options("127.0.0.2", fmt.Sprintf("slow-ok-%d", i))
		half := len(msg) / 2
		l.write(ok, msg[:half])
		time.Sleep(msgTimeout / 3)
		l.write(ok, msg[half:])
		if res := l.response(ok, r, time.Second); res.StatusCode != 200 {
			t.Fatalf("message %d answered %d", i, res.StatusCode)
		}
	}

	slow := l.dial("127.0.0.3")
	msg := l.options("127.0.0.3", "slowloris")
	first := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < len(msg)-4; i++ { // 20 ms a byte: ~5 s for the message
			if _, err := slow.Write([]byte{msg[i]}); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	closedWithin(t, slow, 5*msgTimeout)
	took := time.Since(first)
	slow.Close()
	<-done
	if took < msgTimeout-50*time.Millisecond || took > 3*msgTimeout {
		t.Errorf("trickled message cut after %v, want about %v", took, msgTimeout)
	}
	if n := l.stat("tcp_closed_message_timeout"); n != 1 {
		t.Errorf("tcp_closed_message_timeout = %d, want 1", n)
	}
	openWithin(t, ok, 20*time.Millisecond)
}

// TestTCPKeepaliveNotAMessage: CRLF keepalives (RFC 5626) between
// messages do not start the message clock, and keep the connection from
// going idle.
func TestTCPKeepaliveNotAMessage(t *testing.T) {
	const idle = 600 * time.Millisecond
	l := newTCPLab(t, func(o *Options) { o.TCPIdleTimeout, o.TCPMessageTimeout = idle, 100*time.Millisecond })
	c := l.dial("127.0.0.2")
	for i := 0; i < 8; i++ { // 8 x 150 ms: two idle timeouts, many message timeouts
		l.write(c, "\r\n\r\n")
		openWithin(t, c, idle/4)
	}
	closedWithin(t, c, 3*idle)
	if n := l.stat("tcp_closed_idle"); n != 1 {
		t.Errorf("tcp_closed_idle = %d, want 1", n)
	}
}

// TestTCPBadFraming: a request whose Content-Length is not a number, or
// takes the message over the size limit, is answered (400 / 513: its
// headers parse) and its connection closed: the framing is lost.
func TestTCPBadFraming(t *testing.T) {
	l := newTCPLab(t, func(o *Options) { o.MaxMessageBytes = 4096 })
	for i, tt := range []struct {
		cl   string
		code int
	}{{"abc", 400}, {"-1", 400}, {"100000", 513}} {
		c := l.dial("127.0.0.2")
		msg := strings.Replace(l.options("127.0.0.2", fmt.Sprintf("framing-%d", i)), "Content-Length: 0", "Content-Length: "+tt.cl, 1)
		l.write(c, msg+"some body")
		if res := l.response(c, bufio.NewReader(c), time.Second); res.StatusCode != tt.code {
			t.Errorf("Content-Length %s: answered %d, want %d", tt.cl, res.StatusCode, tt.code)
		}
		closedWithin(t, c, time.Second)
	}
	l.waitOpen(0, 0)
	if n := l.stat("tcp_closed_malformed"); n != 3 {
		t.Errorf("tcp_closed_malformed = %d, want 3", n)
	}
}

// TestTCPGoroutinesReturn: connections that go idle, and connections the
// clients close, leave no goroutine behind.
func TestTCPGoroutinesReturn(t *testing.T) {
	// Timeouts long enough for a busy host to open all the connections
	// before any expires (a silent one is closed after the message
	// timeout).
	const n, idle = 40, 2 * time.Second
	l := newTCPLab(t, func(o *Options) { o.TCPIdleTimeout, o.TCPMessageTimeout = idle, idle })
	time.Sleep(50 * time.Millisecond)
	base := runtime.NumGoroutine()
	back := func(what string) {
		t.Helper()
		daemontest.WaitFor(t, idle+5*time.Second, fmt.Sprintf("goroutines back to %d after %s", base, what),
			func() bool { return runtime.NumGoroutine() <= base })
	}

	var conns []*net.TCPConn
	for i := 0; i < n; i++ {
		c := l.dial(fmt.Sprintf("127.0.1.%d", 1+i))
		c.Write([]byte("\r\n\r\n")) // a keepalive: not a silent (half-open) connection
		conns = append(conns, c)
	}
	l.waitOpen(n, 0)
	if g := runtime.NumGoroutine(); g < base+n {
		t.Fatalf("%d goroutines with %d connections open, base %d", g, n, base)
	}
	back("the idle timeout")
	if got := l.stat("tcp_closed_idle"); got != n {
		t.Errorf("tcp_closed_idle = %d, want %d", got, n)
	}

	conns = conns[:0]
	for i := 0; i < n; i++ {
		conns = append(conns, l.dial(fmt.Sprintf("127.0.2.%d", 1+i)))
	}
	l.waitOpen(n, 0)
	for _, c := range conns {
		c.Close()
	}
	back("the clients closed")
	l.waitOpen(0, 0)
	if got := l.stat("tcp_closed_peer"); got != n {
		t.Errorf("tcp_closed_peer = %d, want %d (cut %d, silent %d)", got, n, l.stat("tcp_closed_cut"), l.stat("tcp_closed_silent"))
	}
}

// TestSourceKey: the per-source cap counts an IPv4 source by address and
// an IPv6 one by its /64.
func TestSourceKey(t *testing.T) {
	for _, tt := range []struct{ a, b string }{
		{"2001:db8:1:2::5", "2001:db8:1:2:ffff::9"},
		{"192.0.2.7", "192.0.2.7"},
	} {
		if ka, kb := sourceKey(netip.MustParseAddr(tt.a)), sourceKey(netip.MustParseAddr(tt.b)); ka != kb {
			t.Errorf("%s and %s counted apart (%s, %s)", tt.a, tt.b, ka, kb)
		}
	}
	if sourceKey(netip.MustParseAddr("192.0.2.7")) == sourceKey(netip.MustParseAddr("192.0.2.8")) ||
		sourceKey(netip.MustParseAddr("2001:db8:1:2::5")) == sourceKey(netip.MustParseAddr("2001:db8:1:3::5")) {
		t.Error("different sources counted together")
	}
}

// TestTCPDialRace: requests that find no connection to a Core at the
// same time share the one that wins the race; the others' are closed,
// so that none is left unclosed (its reader would hold up Close).
func TestTCPDialRace(t *testing.T) {
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tl.Close() })
	var mu sync.Mutex
	var accepted []net.Conn
	go func() { // accept and hold, as a Core does
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted = append(accepted, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range accepted {
			c.Close()
		}
	})
	l := newTxLab(t, 0, func(o *Options) {
		o.Listen = append(o.Listen, fmt.Sprintf("tcp:127.0.0.1:%d", testenv.FreePort(t)))
	})
	dst := tl.Addr().(*net.TCPAddr).AddrPort()
	const n = 8
	got := make([]*tcpConn, n)
	var wg sync.WaitGroup
	start := make(chan struct{}) // all dial at once
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			tc, err := l.b.tcpConnTo("tcp", dst)
			if err != nil {
				t.Error(err)
			}
			got[i] = tc
		}()
	}
	close(start)
	wg.Wait()
	for i, tc := range got {
		if tc != got[0] {
			t.Errorf("dial %d got its own connection", i)
		}
	}
	closed := make(chan struct{})
	go func() { l.b.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close still waiting after 5 s")
	}
}

// TestStreamWaitsForQueueRoom: a message read from a stream is never
// dropped for a full worker queue (its sender does not retransmit): the
// reader waits for room and TCP holds the sender back. With the only
// worker held and a queue of 4, 40 OPTIONS on one connection are all
// answered once the worker goes on. On the old code all but the few
// the queue held were dropped (queue_drops).
func TestStreamWaitsForQueueRoom(t *testing.T) {
	l := newTCPLab(t, func(o *Options) { o.Workers, o.QueueLength = 1, 4 })
	c := l.dial("127.0.0.2")
	r := bufio.NewReader(c)
	ws := &l.b.workerSync[0]
	ws.mu.Lock()
	const n = 40
	var sent strings.Builder
	for i := 0; i < n; i++ {
		sent.WriteString(l.options("127.0.0.2", fmt.Sprintf("qr-%d", i)))
	}
	l.write(c, sent.String())
	time.Sleep(300 * time.Millisecond) // the queue fills; the reader waits
	ws.mu.Unlock()
	for i := 0; i < n; i++ {
		if res := l.response(c, r, 3*time.Second); res.StatusCode != 200 || res.CallID().Value() != fmt.Sprintf("qr-%d", i) {
			t.Fatalf("answer %d: %d for %s, want 200 for qr-%d, in order", i, res.StatusCode, res.CallID().Value(), i)
		}
	}
	if d := l.b.stats.QueueDrops.Load(); d != 0 {
		t.Errorf("%d stream messages dropped for a full queue", d)
	}
}

// TestStreamMessagePieces: an idle reader waits for a message's first
// byte without its read buffer and takes the buffer back for the rest:
// a message written a byte first, then in pieces, after a keepalive,
// and two messages in one write, are each answered once.
func TestStreamMessagePieces(t *testing.T) {
	l := newTCPLab(t, nil)
	c := l.dial("127.0.0.2")
	r := bufio.NewReader(c)
	one := l.options("127.0.0.2", "pieces-1")
	l.write(c, "\r\n\r\n")
	time.Sleep(20 * time.Millisecond)
	for _, piece := range []string{one[:1], one[1:20], one[20 : len(one)-3], one[len(one)-3:]} {
		l.write(c, piece)
		time.Sleep(20 * time.Millisecond)
	}
	l.write(c, l.options("127.0.0.2", "pieces-2")+"\r\n"+l.options("127.0.0.2", "pieces-3"))
	got := map[string]bool{}
	for i := 1; i <= 3; i++ { // in any order: calls are ordered per Call-ID only
		res := l.response(c, r, 2*time.Second)
		if id := res.CallID().Value(); res.StatusCode != 200 || got[id] || !strings.HasPrefix(id, "pieces-") {
			t.Fatalf("answer %d: %d for %s, want 200 for each of pieces-1..3 once", i, res.StatusCode, id)
		}
		got[res.CallID().Value()] = true
	}
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if b, err := r.ReadByte(); err == nil {
		t.Errorf("more than three answers (0x%02x ...)", b)
	}
}

// TestStreamCutMidMessage: a connection closed by its peer in the middle
// of a message is counted cut, with a Warn line naming it; one closed
// after a whole message is counted peer, with no line; one that sends
// nothing is closed at the message timeout, counted silent, with its own
// line.
func TestStreamCutMidMessage(t *testing.T) {
	var logged daemontest.Buffer
	l := newTCPLab(t, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn}))
		o.TCPMessageTimeout = time.Second
	})
	whole := l.dial("127.0.0.2")
	r := bufio.NewReader(whole)
	l.write(whole, l.options("127.0.0.2", "whole"))
	if res := l.response(whole, r, 2*time.Second); res.StatusCode != 200 {
		t.Fatalf("answered %d", res.StatusCode)
	}
	whole.Close()
	cut := l.dial("127.0.0.3")
	l.write(cut, l.options("127.0.0.3", "cut")[:60])
	time.Sleep(50 * time.Millisecond)
	cut.Close()
	silent := l.dial("127.0.0.4")
	closedWithin(t, silent, 5*time.Second)
	l.waitOpen(0, 0)
	if c, p, s := l.stat("tcp_closed_cut"), l.stat("tcp_closed_peer"), l.stat("tcp_closed_silent"); c != 1 || p != 1 || s != 1 {
		t.Errorf("tcp_closed cut %d, peer %d, silent %d; want 1 each", c, p, s)
	}
	s := logged.String()
	if strings.Count(s, "stream closed") != 2 || !regexp.MustCompile(`reason=cut .*127\.0\.0\.3`).MatchString(s) ||
		!regexp.MustCompile(`reason=silent .*127\.0\.0\.4`).MatchString(s) {
		t.Errorf("want one Warn line for the cut connection from 127.0.0.3 and one for the silent one from 127.0.0.4, got:\n%s", s)
	}
}
