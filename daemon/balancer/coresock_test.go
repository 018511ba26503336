package balancer

import (
	"bytes"
	"fmt"
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

// readFrom reads from c until a message want accepts, and returns it
// with its source; fails the test after d.
func readFrom(t *testing.T, c *net.UDPConn, d time.Duration, what string, want func(sip.Message) bool) (sip.Message, netip.AddrPort) {
	t.Helper()
	deadline := time.Now().Add(d)
	buf := make([]byte, 65536)
	for {
		c.SetReadDeadline(deadline)
		n, src, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("no %s within %v", what, d)
		}
		m, err := sip.NewParser().ParseSIP(buf[:n])
		if err == nil && want(m) {
			return m, netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		}
	}
}

// TestCoreSideSocket: an INVITE reaches the Core from the Core-facing
// twin (not the listen port), with our Via naming the twin; the Core
// answers to that Via and the caller gets the answer. The probes leave
// from the twin too. With CorePortOff the Core sees the listen port, as
// before the twins.
func TestCoreSideSocket(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		port int
	}{{"twin", 0}, {"off", CorePortOff}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newTxLab(t, 1, func(o *Options) { o.CorePort = tc.port })
			listen := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(l.addr.Port))
			id := "cs" + sip.GenerateBranchN(8)
			l.send(l.caller, l.invite(id))
			m, src := readFrom(t, l.cores[0], 3*time.Second, "INVITE at the Core", isRequest(sip.INVITE))
			inv := m.(*sip.Request)
			via := inv.Via()
			if tc.port == CorePortOff {
				if src != listen || via.Port != l.addr.Port {
					t.Fatalf("CorePortOff: INVITE from %v with Via port %d, want the listen address %v", src, via.Port, listen)
				}
				if len(l.b.CoreAddrs()) != 0 {
					t.Errorf("CoreAddrs %v with CorePortOff", l.b.CoreAddrs())
				}
				return
			}
			if src == listen {
				t.Fatalf("the INVITE left from the listen address %v, want the Core-facing socket", src)
			}
			if via.Port != int(src.Port()) || via.Host != src.Addr().String() {
				t.Fatalf("Via %s:%d does not name the socket the INVITE left from (%v)", via.Host, via.Port, src)
			}
			if got, want := l.b.CoreAddrs(), []string{"udp:" + src.String()}; len(got) != 1 || got[0] != want[0] {
				t.Errorf("CoreAddrs %v, want %v", got, want)
			}
			// The Core answers where our Via says: the twin.
			if _, err := l.cores[0].WriteToUDPAddrPort([]byte(reply(inv, 486, "Busy Here", "b", l.cores[0])), src); err != nil {
				t.Fatal(err)
			}
			l.recv(l.caller, 3*time.Second, "486 through the Core-facing socket", isResponse(486))
			// Its ACK goes back out of the same socket.
			if _, from := readFrom(t, l.cores[0], 3*time.Second, "ACK of the 486", isRequest(sip.ACK)); from != src {
				t.Errorf("ACK of the 486 from %v, want %v (the INVITE's socket)", from, src)
			}
			// The Record-Route the caller's side uses still names the
			// listen port: the Cores' in-dialog requests come there.
			l.b.probeAll()
			if _, from := readFrom(t, l.cores[0], 3*time.Second, "OPTIONS probe", isRequest(sip.OPTIONS)); from != src {
				t.Errorf("probe from %v, want the Core-facing socket %v", from, src)
			}
		})
	}
}

// TestCoreSideRefusesStrangers: the twin takes datagrams only from the
// Cores and trusted sources; a stranger's are dropped and counted.
func TestCoreSideRefusesStrangers(t *testing.T) {
	t.Parallel()
	l := newTxLab(t, 1, func(o *Options) {
		o.Screen = func(netip.AddrPort, string, []byte) Verdict { return Verdict{} } // nobody trusted by the edge
	})
	stranger, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	twin, err := netip.ParseAddrPort(l.b.CoreAddrs()[0][len("udp:"):])
	if err != nil {
		t.Fatal(err)
	}
	msg := "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK-s1\r\nFrom: <sip:a@127.0.0.2>;tag=1\r\n" +
		"To: <sip:x@127.0.0.1>\r\nCall-ID: s1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	if _, err := stranger.WriteToUDPAddrPort([]byte(msg), twin); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for l.b.stats.TwinRefused.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := l.b.stats.TwinRefused.Load(); n != 1 {
		t.Fatalf("core_side_refused %d, want 1", n)
	}
	stranger.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, _, err := stranger.ReadFromUDP(make([]byte, 2048)); err == nil {
		t.Errorf("the stranger got %d bytes back from the Core-facing socket", n)
	}
}

// TestProbeTimeoutPutOffWhileBehind: a probe timeout while a datagram
// waits unread on the socket its reply comes to is not counted against
// the Core, maxLateWaits times at most; then it is.
func TestProbeTimeoutPutOffWhileBehind(t *testing.T) {
	t.Parallel()
	b, err := New(Options{Listen: []string{"udp:127.0.0.1:5060"}, Cores: []CoreConfig{{Name: "c1", Address: "127.0.0.1:5999"}},
		Probe: ProbeOptions{DownAfter: 1}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	// Not started: the wheel does not turn, probeTimeout is called here.
	// A socket of the test stands for the twin: nobody reads it.
	sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	out := &listener{transport: "udp", udp: sock, addr: sock.LocalAddr().(*net.UDPAddr).AddrPort()}
	c := b.pool.get("c1")
	c.mu.Lock()
	c.up = true
	c.mu.Unlock()
	probeAt := func(branch string) {
		p := &probe{core: c, sent: time.Now(), out: out}
		p.drops, p.ok = out.kernelDrops()
		b.probes.mu.Lock()
		b.probes.m[branch] = p
		b.probes.mu.Unlock()
	}

	// Nothing unread: the timeout counts at once.
	probeAt("p1")
	b.probeTimeout("p1")
	if c.State() != StateInactive {
		t.Fatalf("a probe timeout with the socket idle left the Core %s, want inactive", c.State())
	}
	c.mu.Lock()
	c.up, c.fails = true, 0
	c.recompute()
	c.mu.Unlock()

	// A datagram waits unread: put off twice, then counted.
	w, err := net.DialUDP("udp4", nil, sock.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write([]byte("queued"))
	deadline := time.Now().Add(2 * time.Second)
	for !out.unread() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if !out.unread() {
		t.Fatal("SIOCINQ does not see the queued datagram")
	}
	probeAt("p2")
	for i := 1; i <= maxLateWaits; i++ {
		b.probeTimeout("p2")
		if c.State() != StateActive {
			t.Fatalf("timeout %d while behind took the Core %s", i, c.State())
		}
		if n := b.stats.ProbesPutOff.Load(); n != uint64(i) {
			t.Fatalf("probe_timeouts_put_off %d after %d timeouts, want %d", n, i, i)
		}
	}
	b.probeTimeout("p2")
	if c.State() != StateInactive {
		t.Fatalf("after %d put-off timeouts the Core is %s, want inactive (a dead Core is still marked down)", maxLateWaits, c.State())
	}
}

// TestFloodLeavesCoresUp: a flood of new INVITEs that overflows the
// listen socket (the kernel drops datagrams there) does not take a Core
// that answers its probes down: the replies come to the Core-facing
// socket, which the flood does not reach (no drops there). With one
// socket (CorePortOff) the replies are dropped with the flood and the
// Core is marked down once maxLateWaits put-offs are spent.
func TestFloodLeavesCoresUp(t *testing.T) {
	port := 0
	l := newTxLab(t, 1, func(o *Options) {
		o.Probe = ProbeOptions{Interval: 100 * time.Millisecond, Timeout: time.Second, DownAfter: 2, UpAfter: 1}
		o.UDPReadBuffer = 64 << 10 // small: the flood overflows it at once
		o.Workers = 1
		o.QueueLength = 64
		o.CorePort = port
	})
	ip := l.b
	core := l.cores[0]
	// The Core's own socket takes every INVITE the balancer lets through:
	// a roomy buffer, so that what is judged is the balancer's side.
	core.SetReadBuffer(8 << 20)
	coreAddr := core.LocalAddr().(*net.UDPAddr).AddrPort()
	var answered atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // the Core: answers OPTIONS where the Via says, ignores the rest
		defer wg.Done()
		buf := make([]byte, 65536)
		for {
			select {
			case <-stop:
				return
			default:
			}
			core.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			n, _, err := core.ReadFromUDPAddrPort(buf)
			if err != nil || !bytes.HasPrefix(buf[:n], []byte("OPTIONS ")) {
				continue // the flood's INVITEs: not even parsed, the Core keeps up
			}
			m, err := sip.NewParser().ParseSIP(buf[:n])
			req, ok := m.(*sip.Request)
			if err != nil || !ok || req.Method != sip.OPTIONS {
				continue
			}
			v := req.Via()
			dst, _ := netip.ParseAddrPort(v.Host + ":" + strconv.Itoa(v.Port))
			core.WriteToUDPAddrPort([]byte(sip.NewResponseFromRequest(req, 200, "OK", nil).String()), dst)
			answered.Add(1)
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	// Wait for the Core to be up through its probes.
	deadline := time.Now().Add(5 * time.Second)
	for answered.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if ip.Cores()[0].State != StateActive {
		t.Fatalf("the Core is %s before the flood", ip.Cores()[0].State)
	}
	drops0 := ip.KernelDrops()["udp:"+l.addr.String()]
	// The flood: 4 senders, 3 s or 400,000 INVITEs, whichever first.
	var sent atomic.Int64
	var fw sync.WaitGroup
	end := time.Now().Add(3 * time.Second)
	for s := 0; s < 4; s++ {
		fw.Add(1)
		go func() {
			defer fw.Done()
			c := l.socket()
			for i := 0; time.Now().Before(end) && sent.Add(1) <= 400000; i++ {
				c.WriteToUDP([]byte(l.invite("fl"+strconv.Itoa(s)+"-"+strconv.Itoa(i))), l.addr)
			}
		}()
	}
	fw.Wait()
	drops := ip.KernelDrops()["udp:"+l.addr.String()] - drops0
	if drops == 0 {
		t.Fatal("the flood did not overflow the listen socket: the test's premise failed, nothing was tested")
	}
	time.Sleep(2 * time.Second) // the last probes of the flood judged
	// (trying is allowed: the test's Core never answers the INVITEs,
	// and an attempt with no answer makes a Core suspect.)
	for _, c := range ip.Cores() {
		if c.State == StateInactive {
			t.Errorf("after a flood (%d sent, %d dropped by the kernel on the listen socket) the Core is %s", sent.Load(), drops, c.State)
		}
	}
	if ev := l.ev.has(EventCoreDown + " core1"); ev {
		t.Error("the Core was marked down during the flood")
	}
	for _, a := range ip.CoreAddrs() {
		if n := ip.KernelDrops()[a]; n != 0 {
			t.Errorf("%d datagrams dropped by the kernel on the Core-facing socket %s: the flood reached it", n, a)
		}
	}
	coreDrops, _ := udpDrops("/proc/net/udp", coreAddr.Addr().AsSlice(), coreAddr.Port())
	t.Logf("%d INVITEs sent, %d dropped by the kernel on the listen socket, %d at the Core's; %d probes answered, %d timeouts put off",
		sent.Load(), drops, coreDrops, answered.Load(), ip.stats.ProbesPutOff.Load())
}

// TestDefaultCorePort: the first UDP listen port + 10, past any port a
// UDP listen address uses; the same for the same listen addresses (both
// boxes of a pair).
func TestDefaultCorePort(t *testing.T) {
	for _, c := range []struct {
		listen []string
		want   int
	}{
		{[]string{"udp:192.0.2.10:5060", "tcp:192.0.2.10:5060"}, 5070},
		{[]string{"tcp:192.0.2.10:5060", "udp:192.0.2.10:5080"}, 5090},
		{[]string{"udp:192.0.2.10:5060", "udp:192.0.2.11:5070", "udp:192.0.2.10:5071"}, 5072},
		{[]string{"udp:[2001:db8::1]:65530"}, 1024},
		{[]string{"tcp:192.0.2.10:5060"}, 0},
	} {
		if got := DefaultCorePort(c.listen); got != c.want {
			t.Errorf("DefaultCorePort(%v) = %d, want %d", c.listen, got, c.want)
		}
	}
}

// TestAttemptTimeoutPutOffWhileBehind: a Core's answer that waits in the
// balancer's own Core-side queue is not taken for the Core's silence.
// The worker is held (as a busy one would be) while the Core answers:
// the attempt timer runs out with the answer queued, is put off, and the
// call completes on that Core without a failover. A Core that never
// answers still loses the attempt after maxLateWaits put-offs, while
// the balancer is still behind. On the old code the first INVITE failed
// over to the other Core at attempt_timeout.
func TestAttemptTimeoutPutOffWhileBehind(t *testing.T) {
	const timeout = 400 * time.Millisecond
	l := newTxLab(t, 2, func(o *Options) {
		o.Workers = 1
		o.Retry.AttemptTimeout = timeout
	})
	ws := &l.b.workerSync[0]
	twin := net.UDPAddrFromAddrPort(coreSideOf(l.b.listeners[0]).addr)
	answer := func(c *net.UDPConn, msg string) { // as a Core does: to our Via, the twin
		t.Helper()
		if _, err := c.WriteToUDP([]byte(msg), twin); err != nil {
			t.Fatal(err)
		}
	}

	l.send(l.caller, l.invite("pl1"))
	i, req := l.coreRecv(2*time.Second, "INVITE", isRequest(sip.INVITE))
	core, other := l.cores[i], l.cores[1-i]
	ws.mu.Lock()
	// Twice, as a Core retransmits: the held worker takes one, the
	// other waits in its queue.
	ok := reply(req, 200, "OK", "t-pl1", core)
	answer(core, ok)
	answer(core, ok)
	time.Sleep(timeout + timeout/4)
	if n := l.b.stats.AttemptsPutOff.Load(); n == 0 {
		ws.mu.Unlock()
		t.Fatal("the attempt timer ran out with the Core's answer queued and was not put off")
	}
	if m, _ := l.next(other, 10*time.Millisecond, isRequest(sip.INVITE)); m != nil {
		ws.mu.Unlock()
		t.Fatal("failed over to the other Core while the first one's 200 waited in our own queue")
	}
	ws.mu.Unlock()
	l.recv(l.caller, 2*time.Second, "200 to the caller", isResponse(200))
	if m, _ := l.next(other, 2*timeout, isRequest(sip.INVITE)); m != nil {
		t.Fatalf("failed over to the other Core after the queued 200 was read: %s", m.(*sip.Request).CallID().Value())
	}
	if s := l.b.pool.get(fmt.Sprintf("core%d", i+1)).State(); s != StateActive {
		t.Fatalf("the Core that answered is %s, want active", s)
	}

	// A Core that never answers, with the balancer behind all along.
	put := l.b.stats.AttemptsPutOff.Load()
	l.send(l.caller, l.invite("pl2"))
	i, req = l.coreRecv(2*time.Second, "INVITE", func(m sip.Message) bool {
		r, ok := m.(*sip.Request)
		return ok && r.Method == sip.INVITE && r.CallID().Value() == "pl2"
	})
	stray := reply(req, 180, "Ringing", "t-x", l.cores[i]) // a 180 of another call
	stray = strings.Replace(stray, "pl2", "pl2-other", -1)
	ws.mu.Lock()
	defer ws.mu.Unlock()
	answer(l.cores[i], stray)
	answer(l.cores[i], stray)
	// Put off twice (by half of the timeout each), then the other Core.
	start := time.Now()
	pl2 := func(m sip.Message) bool {
		r, ok := m.(*sip.Request)
		return ok && r.Method == sip.INVITE && r.CallID().Value() == "pl2"
	}
	l.recv(l.cores[1-i], 3*timeout+time.Second, "the failover INVITE while still behind", pl2)
	if took := time.Since(start); took < timeout {
		t.Fatalf("failed over after %v, before even the first timeout", took)
	}
	if n := l.b.stats.AttemptsPutOff.Load() - put; n != maxLateWaits {
		t.Fatalf("%d put-offs before the failover, want %d", n, maxLateWaits)
	}
}
