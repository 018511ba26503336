package edge

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock() *clock               { return &clock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)} }
func ap(s string) netip.AddrPort     { return netip.MustParseAddrPort(s) }
func rule(tp, p string) Rule         { return Rule{Transport: tp, Prefix: netip.MustParsePrefix(p)} }
func invite(ua string) []byte        { return []byte(req("INVITE", ua)) }
func req(method, ua string) string {
	s := method + " sip:100@192.0.2.10 SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bK1\r\n" +
		"From: <sip:a@203.0.113.5>;tag=1\r\nTo: <sip:100@192.0.2.10>\r\nCall-ID: x\r\nCSeq: 1 " + method + "\r\n"
	if ua != "" {
		s += "User-Agent: " + ua + "\r\n"
	}
	return s + "Content-Length: 0\r\n\r\n"
}

var response = []byte("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK2\r\nCall-ID: y\r\nCSeq: 1 BYE\r\n\r\n")

func newGuard(t *testing.T, o Options) (*Guard, *clock) {
	t.Helper()
	c := newClock()
	o.Now = c.now
	g, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return g, c
}

func TestScreenPolicy(t *testing.T) {
	base := Options{
		Trusted:  []Rule{rule("", "198.51.100.0/24"), rule("tcp", "192.0.2.0/24"), rule("", "2001:db8:1::/48")},
		Scanners: []string{"friendly-scanner", "SIPVicious"},
	}
	refuse := base
	refuse.Untrusted = Refuse
	tests := []struct {
		name string
		opt  Options
		src  string
		tp   string
		data []byte
		want Verdict
	}{
		{"trusted", base, "198.51.100.7:5060", "udp", invite(""), trusted},
		{"trusted scanner UA not dropped", base, "198.51.100.7:5060", "udp", invite("friendly-scanner"), trusted},
		{"trusted v4-mapped", base, "[::ffff:198.51.100.7]:5060", "udp", invite(""), trusted},
		{"trusted v6", base, "[2001:db8:1:2::5]:5060", "tcp", invite(""), trusted},
		{"trusted on tcp only: tcp", refuse, "192.0.2.50:5060", "tcp", invite(""), trusted},
		{"trusted on tcp only: udp refused", refuse, "192.0.2.50:5060", "udp", invite(""), forbidden},
		{"untrusted allowed", base, "203.0.113.5:5060", "udp", invite("Linphone/5"), accept},
		{"untrusted refused", refuse, "203.0.113.5:5060", "udp", invite(""), forbidden},
		{"untrusted response passes under refuse", refuse, "203.0.113.5:5060", "udp", response, accept},
		{"scanner", base, "203.0.113.5:5060", "udp", invite("friendly-scanner"), drop},
		{"scanner case and substring", base, "203.0.113.5:5060", "udp", invite("x sipvicious-0.3.4 y"), drop},
		{"scanner under refuse is dropped, not answered", refuse, "203.0.113.5:5060", "udp", invite("friendly-scanner"), drop},
		{"scanner name in the body only", base, "203.0.113.5:5060", "udp", []byte("OPTIONS sip:x SIP/2.0\r\nUser-Agent: ok\r\n\r\nUser-Agent: friendly-scanner"), accept},
		{"scanner, lowercase header, no CR", base, "203.0.113.5:5060", "udp", []byte("OPTIONS sip:x SIP/2.0\nuser-agent :friendly-scanner\n\n"), drop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, _ := newGuard(t, tt.opt)
			if got := g.Screen(ap(tt.src), tt.tp, tt.data); got != tt.want {
				t.Errorf("Screen = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestFloodBanAndExpiry(t *testing.T) {
	g, c := newGuard(t, Options{FloodRequests: 16, FloodPer: 2 * time.Second, FloodBan: 5 * time.Minute,
		Trusted: []Rule{rule("", "198.51.100.0/24")}})
	flooder, other, trusted := ap("203.0.113.9:5060"), ap("203.0.113.10:5060"), ap("198.51.100.1:5060")
	for i := 0; i < 16; i++ {
		if v := g.Screen(flooder, "udp", invite("")); v != accept {
			t.Fatalf("request %d: %+v", i+1, v)
		}
		c.add(10 * time.Millisecond)
	}
	if v := g.Screen(flooder, "udp", invite("")); v != drop {
		t.Fatalf("17th request in 2 s: %+v, want drop (ban)", v)
	}
	if v := g.Screen(flooder, "udp", response); v != drop {
		t.Errorf("a banned source's response: %+v, want drop", v)
	}
	if v := g.Screen(other, "udp", invite("")); v != accept {
		t.Errorf("another source: %+v", v)
	}
	for i := 0; i < 1000; i++ {
		if v := g.Screen(trusted, "udp", invite("")); v != (Verdict{Trusted: true}) {
			t.Fatalf("trusted request %d: %+v", i, v)
		}
	}
	bans := g.Bans()
	if len(bans) != 1 || bans[0].Source != "203.0.113.9" || bans[0].Reason != ReasonFlood || bans[0].Dropped != 2 ||
		bans[0].Until.Sub(bans[0].Since) != 5*time.Minute {
		t.Fatalf("bans = %+v", bans)
	}
	c.add(5*time.Minute - time.Second)
	if v := g.Screen(flooder, "udp", invite("")); v != drop {
		t.Errorf("before expiry: %+v", v)
	}
	c.add(2 * time.Second)
	if v := g.Screen(flooder, "udp", invite("")); v != accept {
		t.Errorf("after expiry: %+v", v)
	}
	if len(g.Bans()) != 0 {
		t.Errorf("bans after expiry: %+v", g.Bans())
	}
	if n := g.Counts()["bans"]; n != 1 {
		t.Errorf("bans counted %d", n)
	}
}

// TestConnectionScreen: empty data is a TCP connection opening (the
// balancer asks at accept): only a ban closes it; it is neither counted
// toward the flood threshold nor refused by the untrusted policy.
func TestConnectionScreen(t *testing.T) {
	g, _ := newGuard(t, Options{FloodRequests: 4, Untrusted: Refuse})
	src := ap("203.0.113.9:5060")
	for i := 0; i < 100; i++ {
		if v := g.Screen(src, "tcp", nil); v != accept {
			t.Fatalf("connection %d: %+v, want accept", i+1, v)
		}
	}
	for i := 0; i < 5; i++ {
		g.Screen(src, "tcp", invite(""))
	}
	if v := g.Screen(src, "tcp", nil); v != drop {
		t.Errorf("connection from a banned source: %+v, want drop", v)
	}
}

// TestFloodSlidingWindow: the threshold (16 per 2 s) applies to a
// sliding window (the previous fixed window weighted by its overlap), so
// a burst straddling a window edge is caught and a steady rate under the
// threshold never is.
func TestFloodSlidingWindow(t *testing.T) {
	type burst struct {
		n     int
		at    time.Duration // start of the burst
		every time.Duration // spacing of its requests
	}
	tests := []struct {
		name   string
		bursts []burst
		banned bool
	}{
		{"7 per second for 10 s", []burst{{70, 0, time.Second / 7}}, false},
		{"9 per second for 10 s", []burst{{90, 0, time.Second / 9}}, true},
		{"16 at once, again 4 s later", []burst{{16, 0, 0}, {16, 4 * time.Second, 0}}, false},
		{"16 at once, again 3.9 s later", []burst{{16, 0, 0}, {16, 3900 * time.Millisecond, 0}}, false},
		{"12 at 1.9 s, 12 at 2.1 s (across the edge)", []burst{{12, 1900 * time.Millisecond, 0}, {12, 2100 * time.Millisecond, 0}}, true},
		{"17 within 1.7 s", []burst{{17, 0, 100 * time.Millisecond}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, c := newGuard(t, Options{FloodRequests: 16, FloodPer: 2 * time.Second})
			t0 := c.now()
			src := ap("203.0.113.9:5060")
			banned := false
			for _, b := range tt.bursts {
				for i := 0; i < b.n; i++ {
					c.mu.Lock()
					c.t = t0.Add(b.at + time.Duration(i)*b.every)
					c.mu.Unlock()
					banned = banned || g.Screen(src, "udp", invite("")) == drop
				}
			}
			if banned != tt.banned {
				t.Errorf("banned = %v, want %v", banned, tt.banned)
			}
		})
	}
}

func TestFloodOffAndExempt(t *testing.T) {
	g, _ := newGuard(t, Options{FloodRequests: 0})
	for i := 0; i < 100; i++ {
		if g.Screen(ap("203.0.113.9:5060"), "udp", invite("")) != accept {
			t.Fatal("flood detection off, yet refused")
		}
	}
	g, _ = newGuard(t, Options{FloodRequests: 4})
	g.SetExempt([]netip.Addr{netip.MustParseAddr("203.0.113.21")})
	for i := 0; i < 100; i++ {
		if g.Screen(ap("[::ffff:203.0.113.21]:5060"), "udp", invite("")) != trusted {
			t.Fatal("an exempt address (a Core) was refused")
		}
	}
}

// TestLoopbackAlwaysAccepted: the box's own traffic from 127.0.0.1 and
// ::1 (a VIP group's sip_options check probes the balancer every
// heartbeat) is never banned, refused or taken for a scanner, even when
// the trusted list leaves loopback out; the rest of 127/8 follows the
// policy.
func TestLoopbackAlwaysAccepted(t *testing.T) {
	g, _ := newGuard(t, Options{Trusted: []Rule{rule("", "198.51.100.0/24")}, Untrusted: Refuse,
		FloodRequests: 4, Scanners: []string{"sipedge-failover"}})
	for _, src := range []string{"127.0.0.1:40000", "[::1]:40000", "[::ffff:127.0.0.1]:40000"} {
		for i := 0; i < 100; i++ {
			if v := g.Screen(ap(src), "udp", invite("sipedge-failover")); v != trusted {
				t.Fatalf("%s, request %d: %+v, want trusted", src, i, v)
			}
		}
	}
	for _, src := range []string{"192.0.2.50:5060", "127.0.0.2:5060"} {
		if v := g.Screen(ap(src), "udp", invite("")); v == accept {
			t.Errorf("%s, untrusted under refuse, was accepted", src)
		}
	}
	if b := g.Bans(); len(b) != 0 {
		t.Errorf("bans = %+v", b)
	}
}

func TestIPv6BannedByPrefix(t *testing.T) {
	g, _ := newGuard(t, Options{FloodRequests: 4})
	for i := 0; i < 5; i++ {
		g.Screen(netip.AddrPortFrom(netip.MustParseAddr(fmt.Sprintf("2001:db8:5:6::%x", i+1)), 5060), "udp", invite(""))
	}
	if v := g.Screen(ap("[2001:db8:5:6:ffff::1]:5060"), "udp", invite("")); v != drop {
		t.Errorf("same /64: %+v, want drop", v)
	}
	if v := g.Screen(ap("[2001:db8:5:7::1]:5060"), "udp", invite("")); v != accept {
		t.Errorf("another /64: %+v", v)
	}
	if b := g.Bans(); len(b) != 1 || b[0].Source != "2001:db8:5:6::/64" {
		t.Errorf("bans = %+v", b)
	}
	if n, err := g.Clear("2001:db8:5:6::77"); n != 1 || err != nil {
		t.Errorf("clear by an address of the /64: %d %v", n, err)
	}
}

// TestSpoofedFloodBounded sends one request from each of 300,000 distinct
// sources (a spoofed flood) and 50 per source from 3,000 more: the
// tracked sources and the bans never exceed the cap.
func TestSpoofedFloodBounded(t *testing.T) {
	const max = 4096
	g, _ := newGuard(t, Options{FloodRequests: 16, MaxSources: max})
	data := invite("")
	for i := 0; i < 300000; i++ {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		g.Screen(netip.AddrPortFrom(a, 5060), "udp", data)
	}
	if n := g.Tracked(); n > max+shards || n < max/2 {
		t.Errorf("tracked %d sources, cap %d", n, max)
	}
	for i := 0; i < 3000; i++ {
		a := netip.AddrFrom4([4]byte{11, 0, byte(i >> 8), byte(i)})
		for j := 0; j < 50; j++ {
			g.Screen(netip.AddrPortFrom(a, 5060), "udp", data)
		}
	}
	cnt := g.Counts()
	if cnt["tracked"] > max+shards || cnt["banned"] > max+shards {
		t.Errorf("tables above the cap: %v", cnt)
	}
	if cnt["evicted_sources"] < 290000 {
		t.Errorf("evictions %d", cnt["evicted_sources"])
	}
	if cnt["bans"] < 2900 {
		t.Errorf("bans %d: flooders lost in evictions", cnt["bans"])
	}
}

type memStore struct {
	mu   sync.Mutex
	bans []Ban
	err  error
	puts int
}

func (m *memStore) LoadBans() ([]Ban, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Ban(nil), m.bans...), nil
}

func (m *memStore) SaveBans(b []Ban) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.puts++
	m.bans = append([]Ban(nil), b...)
	return nil
}

func TestBansPersistAndClear(t *testing.T) {
	st := &memStore{}
	o := Options{FloodRequests: 2, FloodBan: time.Hour, Store: st}
	g, c := newGuard(t, o)
	for _, s := range []string{"203.0.113.1:1", "203.0.113.2:1", "203.0.113.3:1"} {
		for i := 0; i < 3; i++ {
			g.Screen(ap(s), "udp", invite(""))
		}
		c.add(time.Second)
	}
	if len(g.Bans()) != 3 {
		t.Fatalf("bans = %+v", g.Bans())
	}
	// Saving fails (disk full): the bans hold, the error shows, a later save works.
	st.err = errors.New("no space left on device")
	if err := g.save(); err == nil || g.SaveError() == "" || g.Counts()["ban_save_failures"] != 1 {
		t.Fatalf("save with a full disk: %v %q", err, g.SaveError())
	}
	if g.Screen(ap("203.0.113.1:1"), "udp", invite("")) != drop {
		t.Error("ban lost when the store failed")
	}
	st.err = nil
	if err := g.save(); err != nil || g.SaveError() != "" || len(st.bans) != 3 {
		t.Fatalf("save after space returned: %v %q %d", err, g.SaveError(), len(st.bans))
	}

	// A restart: the bans come back; an expired one does not.
	st.bans = append(st.bans, Ban{Source: "203.0.113.99", Reason: ReasonFlood, Since: c.now().Add(-2 * time.Hour), Until: c.now().Add(-time.Hour)})
	o.Now = c.now
	g2, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if b := g2.Bans(); len(b) != 3 || b[0].Source != "203.0.113.3" {
		t.Fatalf("restored bans = %+v", b)
	}
	if g2.Screen(ap("203.0.113.2:7"), "udp", invite("")) != drop {
		t.Error("restored ban not applied")
	}
	if n, err := g2.Clear("203.0.113.2"); n != 1 || err != nil {
		t.Fatalf("clear: %d %v", n, err)
	}
	if g2.Screen(ap("203.0.113.2:7"), "udp", invite("")) != accept {
		t.Error("cleared source still refused")
	}
	if n, _ := g2.Clear("203.0.113.200"); n != 0 {
		t.Errorf("clear of an unknown source lifted %d", n)
	}
	if _, err := g2.Clear("not-an-ip"); err == nil {
		t.Error("clear of a bad address accepted")
	}
	if len(st.bans) != 2 {
		t.Errorf("store after clear: %+v", st.bans)
	}
	if n, _ := g2.Clear(""); n != 2 || len(g2.Bans()) != 0 || len(st.bans) != 0 {
		t.Errorf("clear all: %d, %+v, stored %+v", n, g2.Bans(), st.bans)
	}
}

func TestRunSavesAndExpires(t *testing.T) {
	st := &memStore{}
	g, c := newGuard(t, Options{FloodRequests: 1, FloodBan: 3 * time.Second, Store: st})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- g.Run(ctx) }()
	g.Screen(ap("203.0.113.1:1"), "udp", invite(""))
	g.Screen(ap("203.0.113.1:1"), "udp", invite(""))
	waitFor(t, func() bool { st.mu.Lock(); defer st.mu.Unlock(); return len(st.bans) == 1 })
	c.add(4 * time.Second)
	waitFor(t, func() bool { st.mu.Lock(); defer st.mu.Unlock(); return len(st.bans) == 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, f func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if f() {
			return
		}
	}
	t.Fatal("condition not met within 5 s")
}

func TestUpdateAndMetrics(t *testing.T) {
	g, _ := newGuard(t, Options{FloodRequests: 2, Scanners: []string{"sipcli"}})
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(g))
	g.Screen(ap("203.0.113.1:1"), "udp", invite("sipcli/v1"))
	for i := 0; i < 4; i++ {
		g.Screen(ap("203.0.113.2:1"), "udp", invite(""))
	}
	if err := g.Update(Options{Untrusted: Refuse, FloodRequests: 100, Trusted: []Rule{rule("udp", "203.0.113.7/32")}}); err != nil {
		t.Fatal(err)
	}
	if v := g.Screen(ap("203.0.113.3:1"), "udp", invite("sipcli")); v != forbidden {
		t.Errorf("after reload (no scanners, refuse): %+v", v)
	}
	if v := g.Screen(ap("203.0.113.7:1"), "udp", invite("")); v != trusted {
		t.Errorf("newly trusted: %+v", v)
	}
	if v := g.Screen(ap("203.0.113.2:1"), "udp", invite("")); v != drop {
		t.Errorf("a ban in force survives a reload: %+v", v)
	}
	if err := g.Update(Options{Untrusted: "block"}); err == nil {
		t.Error("bad policy accepted")
	}
	for _, c := range []struct {
		name, label string
		want        float64
	}{
		{"sipedge_edge_bans_total", "flood", 1},
		{"sipedge_edge_drops_total", "banned", 3},
		{"sipedge_edge_drops_total", "scanner", 1},
		{"sipedge_edge_refusals_total", "untrusted", 1},
	} {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, mf := range mfs {
			if mf.GetName() != c.name {
				continue
			}
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == c.label {
					found = true
					if got := m.GetCounter().GetValue(); got != c.want {
						t.Errorf("%s{%s} = %v, want %v", c.name, c.label, got, c.want)
					}
				}
			}
		}
		if !found {
			t.Errorf("%s{%s} missing", c.name, c.label)
		}
	}
}

func BenchmarkScreenUntrusted(b *testing.B) {
	g, _ := New(Options{FloodRequests: 1 << 30, Scanners: []string{"friendly-scanner", "sipvicious", "sipcli"}})
	data := invite("Linphone/5.0")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			g.Screen(netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), 5060), "udp", data)
		}
	})
}

func BenchmarkScreenTrusted(b *testing.B) {
	g, _ := New(Options{Trusted: []Rule{rule("", "198.51.100.0/24")}})
	data := invite("")
	src := ap("198.51.100.5:5060")
	b.ReportAllocs()
	for b.Loop() {
		g.Screen(src, "udp", data)
	}
}
