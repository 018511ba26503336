package timesync

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sipedge/sipedge/hal/testenv/ntptest"
)

// fakeClock is a wall clock off from the machine's by off; Step and
// Slew correct it (a slew at once: the model converges), and are kept.
type fakeClock struct {
	mu     sync.Mutex
	off    time.Duration
	steps  []time.Duration
	slews  []time.Duration
	failed error
}

func (c *fakeClock) Now() time.Time             { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.off) }
func (c *fakeClock) Step(d time.Duration) error { return c.adjust(&c.steps, d) }
func (c *fakeClock) Slew(d time.Duration) error { return c.adjust(&c.slews, d) }

func (c *fakeClock) adjust(kept *[]time.Duration, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failed != nil {
		return c.failed
	}
	c.off += d
	*kept = append(*kept, d)
	return nil
}
func (c *fakeClock) counts() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.steps), len(c.slews)
}

type events struct {
	mu   sync.Mutex
	list []string
}

func (e *events) add(kind, subject, msg string) {
	e.mu.Lock()
	e.list = append(e.list, kind+" "+msg)
	e.mu.Unlock()
}
func (e *events) kinds() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var k []string
	for _, l := range e.list {
		k = append(k, strings.Fields(l)[0])
	}
	return strings.Join(k, ",")
}

func server(t *testing.T) *ntptest.Server {
	t.Helper()
	s, err := ntptest.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func syncer(t *testing.T, clk Clock, ev *events, servers ...string) *Syncer {
	t.Helper()
	s, err := New(Options{Servers: servers, Adjust: true, Clock: clk, Event: ev.add, Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// near reports whether got is want within a loopback round trip on a
// busy host.
func near(got, want time.Duration) bool { return abs(got-want) < 250*time.Millisecond }

// TestStepAtBootThenSlew: a clock an hour behind (an RTC reset) is
// stepped at the first poll; then a small drift is slewed, never stepped.
func TestStepAtBootThenSlew(t *testing.T) {
	srv := server(t)
	clk := &fakeClock{off: -time.Hour}
	ev := &events{}
	s := syncer(t, clk, ev, srv.Addr())
	ctx := context.Background()
	if err := s.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if len(clk.steps) != 1 || !near(clk.steps[0], time.Hour) || !near(clk.off, 0) {
		t.Fatalf("steps %v, clock off by %v after the first poll; want one step of ~1h", clk.steps, clk.off)
	}
	st := s.Status()
	if !st.Synced || st.Server != srv.Addr() || st.Stratum != 2 || st.LastAction != "step" || st.Steps != 1 || st.LastSync == nil || st.OffsetSeconds < 3000 {
		t.Fatalf("status after the step: %+v", st)
	}
	// The clock drifts 300 ms: slewed.
	clk.mu.Lock()
	clk.off -= 300 * time.Millisecond
	clk.mu.Unlock()
	if err := s.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if steps, slews := clk.counts(); steps != 1 || slews != 1 || !near(clk.slews[0], 300*time.Millisecond) {
		t.Fatalf("after a 300ms drift: steps %v slews %v", clk.steps, clk.slews)
	}
	if got := ev.kinds(); got != "time.step,time.sync" {
		t.Fatalf("events %q", got)
	}
}

// TestPanicThreshold: after the first sync, an answer 2 h off (a wrong
// or hostile server) is refused and raised; the clock is not touched.
func TestPanicThreshold(t *testing.T) {
	srv := server(t)
	clk := &fakeClock{}
	ev := &events{}
	s := syncer(t, clk, ev, srv.Addr())
	if err := s.SyncOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.SetAhead(2 * time.Hour)
	err := s.SyncOnce(context.Background())
	if err == nil || !strings.Contains(err.Error(), "beyond time.panic") {
		t.Fatalf("err = %v", err)
	}
	if steps, _ := clk.counts(); steps != 0 || !near(clk.off, 0) {
		t.Fatalf("clock moved: steps %v off %v", clk.steps, clk.off)
	}
	st := s.Status()
	if st.Synced || !st.Panic || st.Errors != 1 {
		t.Fatalf("status: %+v", st)
	}
	if !strings.Contains(ev.kinds(), "time.panic") {
		t.Fatalf("events %q", ev.kinds())
	}
	// The same answer is accepted as the first one after a restart.
	s2 := syncer(t, clk, ev, srv.Addr())
	if err := s2.SyncOnce(context.Background()); err != nil || !near(clk.off, 2*time.Hour) {
		t.Fatalf("first sync of a new syncer: err %v, clock off %v", err, clk.off)
	}
}

// TestBadAnswersAndFailover: a kiss-of-death, an unsynchronised server
// and a silent one are not used; the good one is.
func TestBadAnswersAndFailover(t *testing.T) {
	kod, unsync, silent, good := server(t), server(t), server(t), server(t)
	kod.SetStratum(0)
	kod.SetAhead(time.Hour)
	unsync.SetUnsynchronised(true)
	unsync.SetAhead(time.Hour)
	silent.SetSilent(true)
	good.SetAhead(5 * time.Second)
	clk := &fakeClock{}
	ev := &events{}
	s := syncer(t, clk, ev, kod.Addr(), unsync.Addr(), silent.Addr())
	err := s.SyncOnce(context.Background())
	if err == nil || s.Status().Synced {
		t.Fatalf("synced on bad answers: %v %+v", err, s.Status())
	}
	for _, want := range []string{"kiss of death", "leap", "timeout"} {
		if !strings.Contains(strings.ToLower(err.Error()), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if silent.Asked() != 1 || !near(clk.off, 0) {
		t.Fatalf("silent asked %d, clock off %v", silent.Asked(), clk.off)
	}
	s = syncer(t, clk, ev, kod.Addr(), silent.Addr(), good.Addr())
	if err := s.SyncOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); st.Server != good.Addr() || !near(clk.off, 5*time.Second) {
		t.Fatalf("status %+v, clock off %v", st, clk.off)
	}
}

// TestMonitorOnly: adjust off measures and never touches the clock.
func TestMonitorOnly(t *testing.T) {
	srv := server(t)
	srv.SetAhead(time.Hour)
	clk := &fakeClock{}
	s, err := New(Options{Servers: []string{srv.Addr()}, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SyncOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if steps, slews := clk.counts(); steps+slews != 0 {
		t.Fatal("adjust: false changed the clock")
	}
	if st := s.Status(); !st.Synced || st.LastAction != "none" || st.OffsetSeconds < 3500 {
		t.Fatalf("status %+v", st)
	}
}

// TestRunRetriesAndMetrics: a server that does not answer yet is asked
// again soon; once it answers the clock is set; /metrics shows it.
func TestRunRetriesAndMetrics(t *testing.T) {
	srv := server(t)
	srv.SetSilent(true)
	srv.SetAhead(3 * time.Second)
	clk := &fakeClock{}
	ev := &events{}
	s := syncer(t, clk, ev, srv.Addr())
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(s))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(20 * time.Second); srv.Asked() < 1; {
		if time.Now().After(deadline) {
			t.Fatal("never asked")
		}
		time.Sleep(10 * time.Millisecond)
	}
	srv.SetSilent(false)
	for deadline := time.Now().Add(30 * time.Second); !s.Status().Synced; {
		if time.Now().After(deadline) {
			t.Fatalf("not synced after the server came back: %+v", s.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !near(clk.off, 3*time.Second) {
		t.Fatalf("clock off %v", clk.off)
	}
	if v := testutil.ToFloat64(gaugeOf(reg, "sipedge_time_synced")); v != 1 {
		t.Fatalf("sipedge_time_synced %v", v)
	}
	n, err := testutil.GatherAndCount(reg, "sipedge_time_steps_total", "sipedge_time_errors_total", "sipedge_time_offset_seconds")
	if err != nil || n != 3 {
		t.Fatalf("metrics: %d, %v", n, err)
	}
}

func gaugeOf(reg *prometheus.Registry, name string) prometheus.Collector {
	return prometheus.CollectorFunc(func(ch chan<- prometheus.Metric) {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == name {
				ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, "", nil, nil), prometheus.GaugeValue, mf.Metric[0].GetGauge().GetValue())
			}
		}
	})
}

func TestParseServer(t *testing.T) {
	for in, want := range map[string]string{"192.0.2.1": "192.0.2.1:123", "192.0.2.1:1123": "192.0.2.1:1123", "2001:db8::1": "[2001:db8::1]:123", "[2001:db8::1]:9": "[2001:db8::1]:9"} {
		if got, err := ParseServer(in); err != nil || got != want {
			t.Errorf("ParseServer(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"pool.ntp.org", "192.0.2.1:0", "", "192.0.2.1:x"} {
		if _, err := ParseServer(in); err == nil {
			t.Errorf("ParseServer(%q) accepted", in)
		}
	}
}

// TestBeginThenRun: the first poll Begin started is the one Run goes on
// from, even when it outlives Begin's wait: the clock is stepped once,
// never by two overlapping polls.
func TestBeginThenRun(t *testing.T) {
	srv := server(t)
	srv.SetAhead(time.Hour)
	clk := &fakeClock{}
	ev := &events{}
	s, err := New(Options{Servers: []string{srv.Addr()}, Adjust: true, Clock: clk, Event: ev.add, Timeout: time.Second, Poll: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	srv.SetSilent(true) // the first request times out (1 s)...
	if err := s.Begin(context.Background(), 50*time.Millisecond); err != ErrFirstPending {
		t.Fatalf("Begin = %v, want ErrFirstPending", err)
	}
	srv.SetSilent(false) // ... Run's retry, 2 s after it, is answered
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(30 * time.Second); !s.Status().Synced; {
		if time.Now().After(deadline) {
			t.Fatalf("not synced: %+v", s.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if steps, _ := clk.counts(); steps != 1 || srv.Asked() != 2 || !near(clk.off, time.Hour) {
		t.Fatalf("steps %v, server asked %d times, clock off %v; want 1 step after 2 requests", clk.steps, srv.Asked(), clk.off)
	}
	// Begin with a server that answers: the clock is set when it returns.
	s2, _ := New(Options{Servers: []string{srv.Addr()}, Adjust: true, Clock: clk, Poll: time.Hour})
	srv.SetAhead(time.Hour + 5*time.Second)
	if err := s2.Begin(context.Background(), 10*time.Second); err != nil || !near(clk.off, time.Hour+5*time.Second) {
		t.Fatalf("Begin = %v, clock off %v", err, clk.off)
	}
}
