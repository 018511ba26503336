package resolve

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fakeClock moves only when the test advances it; every After call is
// reported on asked, so a test knows when a resolution has finished.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []fakeWait
	asked chan time.Duration
}

type fakeWait struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), asked: make(chan time.Duration, 100)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
	} else {
		c.waits = append(c.waits, fakeWait{c.now.Add(d), ch})
	}
	c.asked <- d
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waits[:0]
	for _, w := range c.waits {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waits = kept
}

// nextWait waits for the Watcher's next After: its resolution is done.
func (c *fakeClock) nextWait(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-c.asked:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher did not schedule its next resolution")
		return 0
	}
}

// changes collects the OnChange calls.
type changes chan []Target

func (ch changes) next(t *testing.T) []Target {
	t.Helper()
	select {
	case ts := <-ch:
		return ts
	case <-time.After(10 * time.Second):
		t.Fatal("no change reported")
		return nil
	}
}

func (ch changes) none(t *testing.T) {
	t.Helper()
	select {
	case ts := <-ch:
		t.Fatalf("unexpected change: %s", targetsString(ts))
	default:
	}
}

// syncBuffer is a log sink read while the Watcher writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type watchTest struct {
	z     *zone
	srv   *testServer
	clock *fakeClock
	ch    changes
	w     *Watcher
	logs  *syncBuffer
}

// startWatch serves z and watches name with a fake clock; cfg gives
// the bounds (Name, Clock, OnChange and Log are set here).
func startWatch(t *testing.T, z *zone, name string, cfg WatchConfig) *watchTest {
	t.Helper()
	wt := &watchTest{z: z, srv: serve(t, z), clock: newFakeClock(), ch: make(changes, 16), logs: &syncBuffer{}}
	cfg.Name, cfg.Clock, cfg.Log = name, wt.clock, slog.New(slog.NewTextHandler(wt.logs, nil))
	cfg.OnChange = func(ts []Target) { wt.ch <- ts }
	w, err := NewWatcher(newResolver(t, 300*time.Millisecond, wt.srv.addr), cfg)
	if err != nil {
		t.Fatal(err)
	}
	wt.w = w
	ctx, cancel := context.WithCancel(context.Background())
	w.Start(ctx)
	t.Cleanup(func() {
		cancel()
		select {
		case <-w.Done():
		case <-time.After(10 * time.Second):
			t.Error("the watcher did not stop")
		}
	})
	return wt
}

func watchZone(t *testing.T) *zone {
	z := newZone()
	z.set(t,
		"_sip._udp.w.example.test. 30 IN SRV 10 1 5060 core1.w.example.test.",
		"core1.w.example.test. 30 IN A 192.0.2.21",
	)
	return z
}

// TestWatcherTTL: the name is asked again when its TTL runs out, the TTL
// clamped to the floor and the ceiling; a change is reported, the same
// answer is not.
func TestWatcherTTL(t *testing.T) {
	wt := startWatch(t, watchZone(t), "w.example.test", WatchConfig{MinTTL: 5 * time.Second, MaxTTL: time.Hour})
	srvQueries := func() int { return wt.z.count("udp", dns.TypeSRV, "_sip._udp.w.example.test") }
	if got := targetsString(wt.ch.next(t)); got != "192.0.2.21:5060 p10 w1 core1.w.example.test 30s; " {
		t.Fatalf("first targets %s", got)
	}
	if d := wt.clock.nextWait(t); d != 30*time.Second {
		t.Errorf("next resolution in %s, want the TTL 30s", d)
	}
	st := wt.w.State()
	if st.LastGood.IsZero() || st.Stale || st.LastError != "" || !st.SRV || st.Expires.Sub(st.LastGood) != 30*time.Second {
		t.Errorf("state %+v", st)
	}

	// The TTL runs out, same answer: asked again, nothing reported.
	wt.clock.Advance(30 * time.Second)
	if d := wt.clock.nextWait(t); d != 30*time.Second {
		t.Errorf("next resolution in %s", d)
	}
	wt.ch.none(t)
	if n := srvQueries(); n != 2 {
		t.Errorf("SRV asked %d times, want 2", n)
	}

	// A new address with a TTL under the floor.
	wt.z.set(t, "core1.w.example.test. 2 IN A 192.0.2.22")
	wt.clock.Advance(29 * time.Second)
	select {
	case <-wt.clock.asked:
		t.Fatal("asked again before the TTL ran out")
	case <-time.After(20 * time.Millisecond):
	}
	wt.clock.Advance(time.Second)
	if got := targetsString(wt.ch.next(t)); got != "192.0.2.22:5060 p10 w1 core1.w.example.test 2s; " {
		t.Fatalf("changed targets %s", got)
	}
	if d := wt.clock.nextWait(t); d != 5*time.Second {
		t.Errorf("next resolution in %s, want the floor 5s", d)
	}

	// A TTL over the ceiling.
	wt.z.set(t, "_sip._udp.w.example.test. 7200 IN SRV 10 1 5060 core1.w.example.test.", "core1.w.example.test. 7200 IN A 192.0.2.22")
	wt.clock.Advance(5 * time.Second)
	if d := wt.clock.nextWait(t); d != time.Hour {
		t.Errorf("next resolution in %s, want the ceiling 1h", d)
	}
	wt.ch.none(t)
	if n := srvQueries(); n != 4 {
		t.Errorf("SRV asked %d times, want 4", n)
	}
}

// TestWatcherKeepsLastGood: when resolutions fail (SERVFAIL, or the
// server gone) the last good answer stays in force, stale, for
// StaleFor after its TTL ran out; then the set is empty.
func TestWatcherKeepsLastGood(t *testing.T) {
	for _, failure := range []string{"servfail", "stopped"} {
		t.Run(failure, func(t *testing.T) {
			const staleFor = 10 * time.Minute
			wt := startWatch(t, watchZone(t), "w.example.test", WatchConfig{Retry: 5 * time.Second, MaxRetry: 20 * time.Second, StaleFor: staleFor})
			first := wt.ch.next(t)
			wt.clock.nextWait(t)
			good := wt.w.State()
			switch failure {
			case "servfail":
				wt.z.setRcode("*", dns.RcodeServerFailure)
			case "stopped":
				wt.srv.stop()
			}
			wt.clock.Advance(30 * time.Second)
			if d := wt.clock.nextWait(t); d != 5*time.Second {
				t.Errorf("retry in %s, want 5s", d)
			}
			wt.ch.none(t)
			st := wt.w.State()
			if !st.Stale || st.Dropped || st.Failures != 1 || st.LastError == "" || !st.LastGood.Equal(good.LastGood) || !SameTargets(st.Targets, first) {
				t.Fatalf("after a failure: %+v", st)
			}
			if l := wt.logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "keeping the last good answer") ||
				!strings.Contains(l, "name=w.example.test") || !strings.Contains(l, "age=30s") || !strings.Contains(l, "err=") {
				t.Errorf("log:\n%s", l)
			}
			// Retries back off (5s, 10s, 20s, 20s, ...) until the stale
			// period ends, exactly StaleFor after the TTL ran out.
			staleEnd := good.Expires.Add(staleFor)
			wait, waits := 5*time.Second, []time.Duration{}
			var dropped []Target
			for i := 0; ; i++ {
				if i > 100 {
					t.Fatal("the stale period never ended")
				}
				wt.clock.Advance(wait)
				wait = wt.clock.nextWait(t)
				waits = append(waits, wait)
				select {
				case dropped = <-wt.ch:
				default:
					continue
				}
				break
			}
			if len(dropped) != 0 {
				t.Errorf("after the stale period: %s, want none", targetsString(dropped))
			}
			if now := wt.clock.Now(); !now.Equal(staleEnd) {
				t.Errorf("dropped at %s, want %s (StaleFor after the TTL ran out)", now.Sub(good.LastGood), staleEnd.Sub(good.LastGood))
			}
			if waits[0] != 10*time.Second || waits[1] != 20*time.Second || waits[2] != 20*time.Second {
				t.Errorf("retry waits %v, want 10s 20s 20s ...", waits)
			}
			st = wt.w.State()
			if st.Stale || !st.Dropped || len(st.Targets) != 0 || st.LastError == "" {
				t.Errorf("after the stale period: %+v", st)
			}
			if !strings.Contains(wt.logs.String(), "stale period over") {
				t.Errorf("no log line for the end of the stale period:\n%s", wt.logs.String())
			}
			if failure == "stopped" {
				return
			}
			// The server is back: the answer again.
			wt.z.setRcode("*", -1)
			wt.clock.Advance(wait)
			if got := wt.ch.next(t); !SameTargets(got, first) {
				t.Errorf("back: %s", targetsString(got))
			}
			if st := wt.w.State(); st.Stale || st.Dropped || st.Failures != 0 || st.LastError != "" || len(st.Targets) != 1 {
				t.Errorf("back: %+v", st)
			}
		})
	}
}

// TestWatcherNoAnswerYet: a name that fails from the start reports
// nothing, retries, and reports the set once it resolves.
func TestWatcherNoAnswerYet(t *testing.T) {
	z := newZone()
	wt := startWatch(t, z, "late.example.test", WatchConfig{Retry: 5 * time.Second})
	if d := wt.clock.nextWait(t); d != 5*time.Second {
		t.Errorf("retry in %s", d)
	}
	wt.ch.none(t)
	if st := wt.w.State(); !st.LastGood.IsZero() || st.Stale || st.Failures != 1 || !strings.Contains(st.LastError, "no such name") {
		t.Errorf("state %+v", st)
	}
	z.set(t, "late.example.test. 60 IN A 192.0.2.40")
	wt.clock.Advance(5 * time.Second)
	if got := targetsString(wt.ch.next(t)); got != "192.0.2.40:5060 p0 w1 late.example.test 1m0s; " {
		t.Errorf("targets %s", got)
	}
}

// TestWatcherLiteral: an IP address is reported once and never asked.
func TestWatcherLiteral(t *testing.T) {
	z := newZone()
	wt := startWatch(t, z, "192.0.2.9", WatchConfig{Port: 5080})
	if got := targetsString(wt.ch.next(t)); got != "192.0.2.9:5080 p0 w1 192.0.2.9 0s; " {
		t.Errorf("targets %s", got)
	}
	select {
	case d := <-wt.clock.asked:
		t.Errorf("a literal is resolved again after %s", d)
	case <-time.After(50 * time.Millisecond):
	}
	if z.total() != 0 {
		t.Errorf("%d DNS queries for a literal", z.total())
	}
}

// TestWatcherRealClock: with the real clock and a short floor, a
// changed record is picked up after its TTL, and the Watcher stops with
// its context.
func TestWatcherRealClock(t *testing.T) {
	z := newZone()
	z.set(t, "rt.example.test. 0 IN A 192.0.2.50")
	srv := serve(t, z)
	ch := make(changes, 16)
	w, err := NewWatcher(newResolver(t, time.Second, srv.addr), WatchConfig{
		Name: "rt.example.test", Port: 5060, MinTTL: 20 * time.Millisecond, MaxTTL: 50 * time.Millisecond,
		OnChange: func(ts []Target) { ch <- ts }, Log: quietLog(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.Start(ctx)
	if got := ch.next(t); len(got) != 1 || got[0].Addr.String() != "192.0.2.50:5060" {
		t.Fatalf("targets %s", targetsString(got))
	}
	z.set(t, "rt.example.test. 0 IN A 192.0.2.51")
	if got := ch.next(t); len(got) != 1 || got[0].Addr.String() != "192.0.2.51:5060" {
		t.Fatalf("targets %s", targetsString(got))
	}
	cancel()
	select {
	case <-w.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the watcher did not stop with its context")
	}
	if err := w.Run(context.Background()); err == nil {
		t.Error("a second Run was accepted")
	}
}

func TestNewWatcherChecks(t *testing.T) {
	r := newResolver(t, time.Second, deadServer(t))
	for _, cfg := range []WatchConfig{
		{},
		{Name: "a.example.test", Transport: "sctp"},
		{Name: "a.example.test", MinTTL: time.Minute, MaxTTL: time.Second},
	} {
		if _, err := NewWatcher(r, cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	if _, err := NewWatcher(nil, WatchConfig{Name: "a.example.test"}); err == nil {
		t.Error("no resolver accepted")
	}
}
