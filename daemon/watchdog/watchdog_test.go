package watchdog

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/liveness"
	"github.com/sipedge/sipedge/hal"
)

// fakeHealth is a Checker whose answer the test sets.
type fakeHealth struct {
	mu    sync.Mutex
	stale []string
}

func (f *fakeHealth) set(stale ...string) { f.mu.Lock(); f.stale = stale; f.mu.Unlock() }
func (f *fakeHealth) Check(time.Time) (bool, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.stale) == 0, slices.Clone(f.stale)
}

func TestTickFeedsOnlyWhenHealthy(t *testing.T) {
	now := time.Unix(5000, 0)
	clock := func() time.Time { return now }
	dev := hal.NewFakeWatchdog(30*time.Second, false)
	dev.Now = clock
	h := &fakeHealth{}
	var withheld [][]string
	p, err := New(Options{Device: dev, Health: h, Timeout: 10 * time.Second, Now: clock,
		OnWithhold: func(s []string) { withheld = append(withheld, s) }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.start(); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		stale      []string
		keepalives int
		withhold   bool
	}{
		{nil, 1, false},
		{nil, 2, false},
		{[]string{"balancer"}, 2, true},
		{[]string{"balancer", "store"}, 2, true},
		{nil, 3, false},
	}
	armed := now
	for i, s := range steps {
		now = now.Add(time.Second)
		h.set(s.stale...)
		p.Tick()
		st := p.Status()
		if got := dev.State().Keepalives; got != s.keepalives {
			t.Fatalf("step %d: keepalives = %d, want %d", i, got, s.keepalives)
		}
		if st.Withholding != s.withhold || !slices.Equal(st.Stale, s.stale) {
			t.Fatalf("step %d: status = %+v", i, st)
		}
	}
	if len(withheld) != 1 || !slices.Equal(withheld[0], []string{"balancer"}) {
		t.Fatalf("OnWithhold calls = %v, want one with [balancer]", withheld)
	}
	if dev.State().Timeout != 10*time.Second || p.Status().Timeout != 10*time.Second {
		t.Fatalf("timeout not set: %+v", dev.State())
	}
	// A hung subsystem: no more keepalives, and the fake says the board
	// would reset once the timeout runs out.
	h.set("balancer")
	for i := 0; i < 11; i++ {
		now = now.Add(time.Second)
		p.Tick()
	}
	if !dev.Expired(now, armed) {
		t.Fatal("watchdog would not have reset the board with a stale subsystem")
	}
}

func TestRunWithLivenessAndCleanClose(t *testing.T) {
	reg := liveness.New()
	beat := reg.Register("balancer", 200*time.Millisecond)
	dev := hal.NewFakeWatchdog(10*time.Second, true)
	p, err := New(Options{Device: dev, Health: reg, Interval: 10 * time.Millisecond, BootReset: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for dev.State().Keepalives < 5 {
		beat.Beat()
		if time.Now().After(deadline) {
			t.Fatal("no keepalives while healthy")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Stop beating: the policy must stop feeding.
	deadline = time.Now().Add(5 * time.Second)
	for !p.Status().Withholding {
		if time.Now().After(deadline) {
			t.Fatal("policy kept feeding a stale subsystem")
		}
		time.Sleep(10 * time.Millisecond)
	}
	n := dev.State().Keepalives
	time.Sleep(100 * time.Millisecond)
	if got := dev.State().Keepalives; got != n {
		t.Fatalf("keepalives went on while withholding: %d -> %d", n, got)
	}
	st := p.Status()
	if !st.Armed || !st.LastResetByWatchdog || !slices.Equal(st.Stale, []string{"balancer"}) {
		t.Fatalf("status = %+v", st)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ds := dev.State(); !ds.Closed || ds.Abandoned {
		t.Fatalf("clean shutdown did not magic-close: %+v", ds)
	}
	if p.Status().Armed {
		t.Fatal("still armed after clean shutdown")
	}
}

func TestAbandonKeepsArmed(t *testing.T) {
	dev := hal.NewFakeWatchdog(10*time.Second, false)
	p, _ := New(Options{Device: dev, Health: &fakeHealth{}})
	p.Abandon()
	if ds := dev.State(); ds.Closed || !ds.Abandoned {
		t.Fatalf("state = %+v", ds)
	}
}

func TestNewNeedsDeviceAndHealth(t *testing.T) {
	if _, err := New(Options{Health: &fakeHealth{}}); err == nil {
		t.Fatal("no device accepted")
	}
	if _, err := New(Options{Device: hal.NewFakeWatchdog(time.Second, false)}); err == nil {
		t.Fatal("no health accepted")
	}
}
