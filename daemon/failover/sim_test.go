package failover

import (
	"log/slog"
	"net/netip"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/sipedge/sipedge/hal"
)

// The simulation connects Managers through an in-memory network, drives
// them with a fake clock in small ticks and checks after every tick that
// no two boxes hold the VIP at once (unless the test cuts the link, where
// split brain is expected).

var (
	netipZero = netip.Prefix{}
	testKey   = []byte("0123456789abcdef0123456789abcdef")
	testVIP   = netip.MustParsePrefix("192.0.2.10/24")
	t0        = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
)

const tick = 10 * time.Millisecond

type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

type recorder struct{ events []Event }

func (r *recorder) Record(e Event) { r.events = append(r.events, e) }

type simNode struct {
	name   string
	addr   netip.AddrPort // heartbeat address: 192.0.2.11:694, .12, ...
	m      *Manager
	hal    *hal.Fake
	ev     *recorder
	opt    Options
	up     bool
	outbox [][]byte
	sent   [][]byte         // every datagram ever sent (for replay tests)
	relay  *hal.FakeRelayer // nil: the HAL cannot relay
	arp    *hal.FakeARP     // nil: the HAL cannot probe ARP
	ops    []string         // address and relay operations in order (with relay)
}

type sim struct {
	t       *testing.T
	clock   *fakeClock
	nodes   []*simNode
	cut     bool // the link between the boxes is down
	overlap time.Duration
	allowSB bool // split brain expected (link cut)
}

func newSim(t *testing.T) *sim {
	return &sim{t: t, clock: &fakeClock{now: t0}}
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("FAILOVER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// groupOpts is a test group: 100 ms interval, 300 ms deadtime.
func groupOpts(role Role, prio int) GroupOptions {
	return GroupOptions{
		Name: "sip", Address: testVIP, Interface: "eth0", Role: role, Priority: prio,
		Deadtime: 300 * time.Millisecond, Initdead: 600 * time.Millisecond,
		Failback: true, StableFor: time.Second, GARPCount: 3, GARPRepeatAfter: 2 * time.Second,
	}
}

func (s *sim) add(name string, groups ...GroupOptions) *simNode {
	s.t.Helper()
	n := &simNode{name: name, hal: hal.NewFake("eth0"), ev: &recorder{},
		addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(11 + len(s.nodes))}), 694)}
	n.opt = Options{Node: name, Key: testKey, Interval: 100 * time.Millisecond,
		ReplayWindow: 5 * time.Second, Groups: groups, Logger: testLogger(s.t),
		Clock: s.clock, Events: n.ev, Metrics: NewMetrics(nil)}
	s.nodes = append(s.nodes, n)
	return n
}

// boot starts (or restarts) n's daemon; its HAL (addresses) survives.
func (s *sim) boot(n *simNode) {
	s.t.Helper()
	var nw Network = n.hal
	if n.relay != nil {
		nw = &relayNet{Fake: n.hal, FakeRelayer: n.relay, n: n}
	}
	if n.arp != nil {
		nw = arpNet{Fake: n.hal, FakeARP: n.arp}
	}
	m, err := New(n.opt, nw, n.hal)
	if err != nil {
		s.t.Fatalf("New(%s): %v", n.name, err)
	}
	var peers []netip.AddrPort
	for _, p := range s.nodes {
		if p != n {
			peers = append(peers, p.addr)
		}
	}
	m.setPeers(peers)
	m.send = func(b []byte) error {
		n.outbox = append(n.outbox, append([]byte(nil), b...))
		n.sent = append(n.sent, append([]byte(nil), b...))
		return nil
	}
	n.m, n.up, n.outbox = m, true, nil
	if err := m.start(s.clock.now); err != nil {
		s.t.Fatalf("start(%s): %v", n.name, err)
	}
}

// kill stops n like kill -9 followed by the supervisor removing its VIP
// (as PID 1 does on the appliance); keepVIP leaves it (no supervisor).
func (s *sim) kill(n *simNode, keepVIP bool) {
	n.up, n.outbox = false, nil
	if !keepVIP {
		_ = n.hal.DelAddress("eth0", testVIP)
	}
}

// stop is a clean stop (SIGTERM).
func (s *sim) stop(n *simNode) {
	n.m.shutdown(s.clock.now)
	s.deliver()
	n.up = false
}

func (s *sim) deliver() {
	for round := 0; round < 10; round++ {
		any := false
		s.clock.now = s.clock.now.Add(100 * time.Microsecond) // the wire takes time
		for _, n := range s.nodes {
			out := n.outbox
			n.outbox = nil
			for _, b := range out {
				any = true
				if s.cut {
					continue
				}
				for _, peer := range s.nodes {
					if peer != n && peer.up {
						peer.m.receiveFrom(b, n.addr, s.clock.now)
					}
				}
			}
		}
		if !any {
			return
		}
	}
}

// settle waits for the announcement bursts in flight.
func (s *sim) settle() {
	for _, n := range s.nodes {
		if n.m != nil {
			n.m.annWG.Wait()
		}
	}
}

func (s *sim) holders() []string {
	var h []string
	for _, n := range s.nodes {
		if n.hal.HasAddress("eth0", testVIP) {
			h = append(h, n.name)
		}
	}
	sort.Strings(h)
	return h
}

// run advances the clock by d in ticks.
func (s *sim) run(d time.Duration) {
	s.t.Helper()
	end := s.clock.now.Add(d)
	for s.clock.now.Before(end) {
		s.clock.now = s.clock.now.Add(tick)
		for _, n := range s.nodes {
			if n.up {
				n.m.step(s.clock.now)
			}
		}
		s.deliver()
		s.settle()
		if h := s.holders(); len(h) > 1 && !s.cut && !s.allowSB {
			s.overlap += tick
			s.t.Errorf("at %v: VIP held by %v at once", s.clock.now.Sub(t0), h)
		}
	}
}

// until advances until cond holds or max passes; it returns the time it
// took.
func (s *sim) until(max time.Duration, cond func() bool) (time.Duration, bool) {
	s.t.Helper()
	start := s.clock.now
	for s.clock.now.Sub(start) < max {
		if cond() {
			return s.clock.now.Sub(start), true
		}
		s.run(tick)
	}
	return s.clock.now.Sub(start), cond()
}

func (n *simNode) state(group string) State {
	n.m.mu.Lock()
	defer n.m.mu.Unlock()
	return n.m.byName[group].state
}

func (s *sim) wantState(n *simNode, group string, want State) {
	s.t.Helper()
	if got := n.state(group); got != want {
		s.t.Fatalf("at %v: %s %s = %s, want %s", s.clock.now.Sub(t0), n.name, group, got, want)
	}
}

func (s *sim) wantHolders(want ...string) {
	s.t.Helper()
	got := s.holders()
	if len(got) != len(want) {
		s.t.Fatalf("at %v: holders %v, want %v", s.clock.now.Sub(t0), got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			s.t.Fatalf("at %v: holders %v, want %v", s.clock.now.Sub(t0), got, want)
		}
	}
}

// pair boots a main A (150) and backup B (100) and lets A take the VIP.
func pair(t *testing.T, mod func(a, b *GroupOptions)) (*sim, *simNode, *simNode) {
	return pairOpts(t, mod, nil)
}

// pairOpts is pair with the boxes' Options (logger, metrics) changed by
// opts before they boot.
func pairOpts(t *testing.T, mod func(a, b *GroupOptions), opts func(a, b *Options)) (*sim, *simNode, *simNode) {
	s := newSim(t)
	ga, gb := groupOpts(RoleMain, 150), groupOpts(RoleBackup, 100)
	if mod != nil {
		mod(&ga, &gb)
	}
	a, b := s.add("edge-a", ga), s.add("edge-b", gb)
	if opts != nil {
		opts(&a.opt, &b.opt)
	}
	s.boot(a)
	s.boot(b)
	s.run(200 * time.Millisecond)
	s.wantState(a, "sip", StateMaster)
	s.wantState(b, "sip", StateBackup)
	s.wantHolders("edge-a")
	return s, a, b
}
