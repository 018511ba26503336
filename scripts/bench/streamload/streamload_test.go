package streamload

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// uas is a tiny SIP UAS over TCP or TLS on loopback: 100, 180, 200 (with
// two Record-Route entries of its own) to INVITE, 200 to BYE and
// OPTIONS; ACKs are checked for the route set. silent makes it read
// and drop everything (a server that stops answering).
type uas struct {
	ln                                     net.Listener
	silent                                 atomic.Bool
	open                                   atomic.Int64 // connections open now
	sources                                sync.Map     // source IP -> true
	invites, acks, byes, options, badRoute atomic.Int64
	wg                                     sync.WaitGroup
	mu                                     sync.Mutex
	conns                                  map[net.Conn]bool
}

const (
	rrTop    = "<sip:127.0.0.1:1;lr>"
	rrBottom = "<sip:127.0.0.1:2;transport=tcp;lr>"
)

func newUAS(t *testing.T, cfg *tls.Config) *uas {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	u := &uas{ln: ln, conns: map[net.Conn]bool{}}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.mu.Lock()
			u.conns[c] = true
			u.mu.Unlock()
			u.wg.Add(1)
			go func() { defer u.wg.Done(); u.serve(c) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		u.mu.Lock()
		for c := range u.conns {
			c.Close()
		}
		u.mu.Unlock()
		u.wg.Wait()
	})
	return u
}

func (u *uas) addr() string { return u.ln.Addr().String() }

// headers returns the raw values of the named header lines of msg.
func headers(msg, name string) []string {
	var out []string
	for _, l := range strings.Split(msg, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

func (u *uas) serve(c net.Conn) {
	u.open.Add(1)
	defer u.open.Add(-1)
	defer c.Close()
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		u.sources.Store(ap.Addr(), true)
	}
	r := bufio.NewReader(c)
	var wmu sync.Mutex
	for {
		raw, err := readMessage(r)
		if err != nil {
			return
		}
		m, err := sip.ParseMessage(raw)
		if err != nil {
			continue
		}
		req, ok := m.(*sip.Request)
		if !ok || u.silent.Load() {
			continue
		}
		s := string(raw)
		reply := func(code int, reason, extra string) {
			var b strings.Builder
			b.WriteString("SIP/2.0 ")
			b.WriteString(itoa(code) + " " + reason + "\r\n")
			for _, v := range headers(s, "Via") {
				b.WriteString("Via: " + v + "\r\n")
			}
			to := headers(s, "To")[0]
			if !strings.Contains(to, "tag=") && code > 100 {
				to += ";tag=uas"
			}
			b.WriteString("From: " + headers(s, "From")[0] + "\r\nTo: " + to + "\r\nCall-ID: " + headers(s, "Call-ID")[0] +
				"\r\nCSeq: " + headers(s, "CSeq")[0] + "\r\n" + extra + "Content-Length: 0\r\n\r\n")
			wmu.Lock()
			c.Write([]byte(b.String()))
			wmu.Unlock()
		}
		switch req.Method {
		case sip.INVITE:
			u.invites.Add(1)
			reply(100, "Trying", "")
			reply(180, "Ringing", "")
			reply(200, "OK", "Record-Route: "+rrTop+"\r\nRecord-Route: "+rrBottom+"\r\nContact: <sip:uas@127.0.0.1:9;transport=tcp>\r\n")
		case sip.ACK:
			u.acks.Add(1)
			if !u.routed(req, s) {
				u.badRoute.Add(1)
			}
		case sip.BYE:
			u.byes.Add(1)
			if !u.routed(req, s) {
				u.badRoute.Add(1)
			}
			reply(200, "OK", "")
		case sip.OPTIONS:
			u.options.Add(1)
			reply(200, "OK", "")
		}
	}
}

// routed: the in-dialog request goes to the Contact along the route set,
// the Record-Route reversed.
func (u *uas) routed(req *sip.Request, raw string) bool {
	rt := headers(raw, "Route")
	return req.Recipient.User == "uas" && len(rt) == 2 && rt[0] == rrBottom && rt[1] == rrTop
}

func itoa(n int) string { return strconv.Itoa(n) }

// certs writes a CA and a server certificate for 127.0.0.1 and sip.test
// (WritePKI); it returns the server config and the CA file's path.
func certs(t *testing.T) (*tls.Config, string) {
	t.Helper()
	p, err := WritePKI(t.TempDir(), "sip.test", []net.IP{net.ParseIP("127.0.0.1")}, 0)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{kp}}, p.CAFile
}

func clientTLS(t *testing.T, caFile, name string) *tls.Config {
	t.Helper()
	c, err := ClientTLS(caFile, name, false)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestCallerCompletesCalls(t *testing.T) {
	srvTLS, caFile := certs(t)
	for _, network := range []string{"tcp", "tls"} {
		t.Run(network, func(t *testing.T) {
			var u *uas
			tgt := Target{Network: network}
			if network == "tls" {
				u = newUAS(t, srvTLS)
				tgt.TLS = clientTLS(t, caFile, "sip.test")
			} else {
				u = newUAS(t, nil)
			}
			tgt.Addr = u.addr()
			var secs []Second
			r, err := RunCaller(ctx(t), CallerConfig{Target: tgt, Conns: 4, Rate: 200, Duration: time.Second, Hold: 10 * time.Millisecond,
				CallTimeout: 2 * time.Second, EverySecond: func(s Second) { secs = append(secs, s) }})
			if err != nil {
				t.Fatal(err)
			}
			t.Log(r)
			if r.Attempted != 200 || r.Succeeded != 200 || r.Failed != 0 {
				t.Fatalf("attempted %d, succeeded %d, failed %d (%v), want 200/200/0", r.Attempted, r.Succeeded, r.Failed, r.Reasons)
			}
			if r.Setup.N != 200 || r.Bye.N != 200 || r.Setup.P50 <= 0 {
				t.Errorf("latencies: setup %v, bye %v", r.Setup, r.Bye)
			}
			if n := u.acks.Load(); n != 200 {
				t.Errorf("server saw %d ACKs, want 200", n)
			}
			if n := u.badRoute.Load(); n != 0 {
				t.Errorf("%d ACK/BYE without the route set reversed or to the wrong Contact", n)
			}
			if u.open.Load() > 4 {
				t.Errorf("%d connections at the server, want 4", u.open.Load())
			}
			sum := 0
			for _, s := range r.Seconds {
				sum += s.Attempted
			}
			if sum != 200 || len(secs) == 0 {
				t.Errorf("per-second rows add to %d attempts (%d live rows)", sum, len(secs))
			}
		})
	}
}

func TestCallerCountsFailures(t *testing.T) {
	u := newUAS(t, nil)
	// The server stops answering after about half the run.
	go func() {
		for u.invites.Load() < 50 {
			time.Sleep(time.Millisecond)
		}
		u.silent.Store(true)
	}()
	r, err := RunCaller(ctx(t), CallerConfig{Target: Target{Network: "tcp", Addr: u.addr()}, Conns: 2, Rate: 100, Duration: time.Second,
		Hold: time.Millisecond, CallTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r)
	if r.Attempted != 100 || r.Succeeded+r.Failed != 100 {
		t.Fatalf("attempted %d, succeeded %d, failed %d", r.Attempted, r.Succeeded, r.Failed)
	}
	if r.Failed < 30 || r.Succeeded < 30 {
		t.Fatalf("succeeded %d, failed %d: want about half each", r.Succeeded, r.Failed)
	}
	if r.Reasons["timeout INVITE"] == 0 {
		t.Errorf("reasons %v: want INVITE timeouts", r.Reasons)
	}
}

func TestCallerConnectionLost(t *testing.T) {
	u := newUAS(t, nil)
	go func() {
		for u.invites.Load() < 20 {
			time.Sleep(time.Millisecond)
		}
		u.mu.Lock()
		for c := range u.conns {
			c.Close()
		}
		u.mu.Unlock()
	}()
	r, err := RunCaller(ctx(t), CallerConfig{Target: Target{Network: "tcp", Addr: u.addr()}, Conns: 2, Rate: 100, Duration: 500 * time.Millisecond,
		Hold: time.Millisecond, CallTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r)
	if r.ConnsLost != 2 || r.Failed == 0 || r.Reasons["connection closed"] == 0 || r.Succeeded+r.Failed != r.Attempted {
		t.Errorf("lost %d conns, %d failed (%v): want both lost and calls failed by it", r.ConnsLost, r.Failed, r.Reasons)
	}
}

func TestHandshakes(t *testing.T) {
	srvTLS, caFile := certs(t)
	u := newUAS(t, srvTLS)
	r, err := RunHandshakes(ctx(t), HandshakeConfig{Target: Target{Network: "tls", Addr: u.addr(), TLS: clientTLS(t, caFile, "")},
		Rate: 50, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r)
	if r.Attempted != 50 || r.Succeeded != 50 || r.Statuses[200] != 50 || r.Handshake.N != 50 || r.Options.N != 50 {
		t.Fatalf("attempted %d, succeeded %d, statuses %v, handshakes %d: want 50 each", r.Attempted, r.Succeeded, r.Statuses, r.Handshake.N)
	}
	// Verification is on by default: a certificate of an unknown CA fails.
	r, err = RunHandshakes(ctx(t), HandshakeConfig{Target: Target{Network: "tls", Addr: u.addr()}, Rate: 20, Duration: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Succeeded != 0 || r.Failed != 10 || r.Reasons["tls handshake"] != 10 {
		t.Errorf("unverified server: %d ok, %d failed (%v); want 10 handshake failures", r.Succeeded, r.Failed, r.Reasons)
	}
	// A server that takes the handshake but never answers the OPTIONS.
	u.silent.Store(true)
	r, err = RunHandshakes(ctx(t), HandshakeConfig{Target: Target{Network: "tls", Addr: u.addr(), TLS: clientTLS(t, caFile, "")},
		Rate: 20, Duration: 250 * time.Millisecond, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Failed != 5 || r.Reasons["timeout OPTIONS"] != 5 {
		t.Errorf("silent server: %d failed (%v); want 5 OPTIONS timeouts", r.Failed, r.Reasons)
	}
}

func TestIdleHoldsConnections(t *testing.T) {
	srvTLS, caFile := certs(t)
	for _, network := range []string{"tcp", "tls"} {
		t.Run(network, func(t *testing.T) {
			var u *uas
			tgt := Target{Network: network, Sources: Sources(netip.MustParseAddr("127.0.0.2"), 3)}
			if network == "tls" {
				u = newUAS(t, srvTLS)
				tgt.TLS = clientTLS(t, caFile, "")
			} else {
				u = newUAS(t, nil)
			}
			tgt.Addr = u.addr()
			const k = 300
			var atReady int64
			var ready IdleStatus
			st, err := RunIdle(ctx(t), IdleConfig{Target: tgt, Conns: k, Hold: 200 * time.Millisecond, Ready: func(s IdleStatus) {
				ready = s
				// The server may not have counted the last accept yet.
				for i := 0; i < 100 && u.open.Load() < k; i++ {
					time.Sleep(10 * time.Millisecond)
				}
				atReady = u.open.Load()
			}})
			if err != nil {
				t.Fatal(err)
			}
			t.Log(st)
			if ready.Open != k || ready.Answered != k || atReady != k {
				t.Fatalf("at ready: %v; server had %d open; want %d", ready, atReady, k)
			}
			if st.Open != k || st.Closed != 0 {
				t.Errorf("after the hold: %v", st)
			}
			n := 0
			u.sources.Range(func(_, _ any) bool { n++; return true })
			if n != 3 {
				t.Errorf("server saw %d source addresses, want 3", n)
			}
			for i := 0; i < 200 && u.open.Load() > 0; i++ {
				time.Sleep(10 * time.Millisecond)
			}
			if n := u.open.Load(); n != 0 {
				t.Errorf("%d connections still open at the server after the run", n)
			}
		})
	}
}

func TestIdleCRLF(t *testing.T) {
	u := newUAS(t, nil)
	st, err := RunIdle(ctx(t), IdleConfig{Target: Target{Network: "tcp", Addr: u.addr()}, Conns: 20, CRLF: true, Hold: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if st.Open != 20 || st.Answered != 0 || u.options.Load() != 0 {
		t.Errorf("%v, server OPTIONS %d", st, u.options.Load())
	}
}

func TestReadMessage(t *testing.T) {
	in := "\r\n\r\nSIP/2.0 200 OK\r\nl: 4\r\nCall-ID: a\r\n\r\nbodySIP/2.0 180 Ringing\r\nContent-Length: 0\r\n\r\n"
	r := bufio.NewReader(strings.NewReader(in))
	m1, err := readMessage(r)
	if err != nil || !strings.HasSuffix(string(m1), "\r\n\r\nbody") {
		t.Fatalf("first: %q %v", m1, err)
	}
	m2, err := readMessage(r)
	if err != nil || !strings.HasPrefix(string(m2), "SIP/2.0 180") {
		t.Fatalf("second: %q %v", m2, err)
	}
	if _, err := readMessage(r); err == nil {
		t.Fatal("no error at the end")
	}
}

func TestRequestsParse(t *testing.T) {
	c := &conn{local: "127.0.0.2:40000"}
	b := c.build("TLS", request{method: "BYE", ruri: "sip:core@127.0.0.1:5070", toURI: "sip:service@127.0.0.1:5061", branch: "b1",
		fromTag: "f1", tag: "t1", callID: "c1", cseq: 2, routes: []string{rrBottom, rrTop}})
	m, err := sip.ParseMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	req := m.(*sip.Request)
	if req.Method != sip.BYE || req.CallID().Value() != "c1" || req.CSeq().SeqNo != 2 || len(req.GetHeaders("Route")) != 2 {
		t.Errorf("parsed back: %s", req)
	}
	if tag, _ := req.To().Params.Get("tag"); tag != "t1" {
		t.Errorf("To tag %q", tag)
	}
	if v := req.Via(); v.Transport != "TLS" || v.Host != "127.0.0.2" {
		t.Errorf("Via %v", v)
	}
}

func TestParseSources(t *testing.T) {
	got, err := ParseSources("127.0.0.2-127.0.0.4, 127.0.1.1+2,127.0.0.9")
	if err != nil {
		t.Fatal(err)
	}
	want := "[127.0.0.2 127.0.0.3 127.0.0.4 127.0.1.1 127.0.1.2 127.0.0.9]"
	if fmtAddrs(got) != want {
		t.Errorf("got %v", got)
	}
	if _, err := ParseSources("127.0.0.4-127.0.0.2"); err == nil {
		t.Error("a reversed range parsed")
	}
}

func fmtAddrs(a []netip.Addr) string {
	s := make([]string, len(a))
	for i, x := range a {
		s[i] = x.String()
	}
	return "[" + strings.Join(s, " ") + "]"
}

func TestLimitSaysWhenBehind(t *testing.T) {
	s := newSelfLimit()
	for i := 0; i < 10; i++ {
		s.behind(100 * time.Millisecond)
	}
	l := s.limit(90, 100)
	if len(l.Reasons) != 2 {
		t.Errorf("reasons %v: want the offered count and the lag", l.Reasons)
	}
	if l := newSelfLimit().limit(100, 100); len(l.Reasons) != 0 {
		t.Errorf("an idle generator judged limited: %v", l.Reasons)
	}
}

// A generator that cannot keep its schedule (here each start blocks
// 2 ms at 1,000/s) says so.
func TestPaceReportsItsOwnLimit(t *testing.T) {
	lim := newSelfLimit()
	start := time.Now()
	n := pace(nil, 1000, start, start.Add(200*time.Millisecond), 200, lim, func(int) { time.Sleep(2 * time.Millisecond) })
	l := lim.limit(n, 200)
	if !strings.Contains(l.String(), "GENERATOR-LIMITED") || !strings.Contains(l.String(), "behind schedule") {
		t.Errorf("offered %d of 200: %v", n, l)
	}
	// Far behind: it stops a second after its window, short of its count.
	lim = newSelfLimit()
	start = time.Now()
	n = pace(nil, 1000, start, start.Add(100*time.Millisecond), 100, lim, func(int) { time.Sleep(20 * time.Millisecond) })
	if l := lim.limit(n, 100); n >= 100 || !strings.Contains(l.String(), "could not keep the rate") {
		t.Errorf("offered %d of 100: %v", n, l)
	}
}
