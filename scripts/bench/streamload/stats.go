package streamload

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Second is one second of a run, by the second an attempt started
// (Attempted) or ended (Succeeded, Failed).
type Second struct {
	T         int `json:"t"`
	Attempted int `json:"attempted"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
}

// Percentiles of a latency, in milliseconds.
type Percentiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

func (p Percentiles) String() string {
	if p.N == 0 {
		return "none"
	}
	return fmt.Sprintf("p50 %.1f ms, p90 %.1f, p99 %.1f, max %.1f (n=%d)", p.P50, p.P90, p.P99, p.Max, p.N)
}

// latencies collects durations (bounded by the run's call count).
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) percentiles() Percentiles {
	l.mu.Lock()
	d := slices.Clone(l.d)
	l.mu.Unlock()
	if len(d) == 0 {
		return Percentiles{}
	}
	slices.Sort(d)
	at := func(q float64) float64 {
		i := int(q*float64(len(d))+0.5) - 1
		i = max(0, min(i, len(d)-1))
		return float64(d[i]) / 1e6
	}
	return Percentiles{N: len(d), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: float64(d[len(d)-1]) / 1e6}
}

// counters counts per second since start, and failure reasons.
type counters struct {
	start   time.Time
	secs    []secCounts
	mu      sync.Mutex
	reasons map[string]int
}

type secCounts struct{ att, ok, fail atomic.Int64 }

func newCounters(start time.Time, span time.Duration) *counters {
	return &counters{start: start, secs: make([]secCounts, int(span/time.Second)+2), reasons: map[string]int{}}
}

func (c *counters) sec(t time.Time) *secCounts {
	i := int(t.Sub(c.start) / time.Second)
	return &c.secs[max(0, min(i, len(c.secs)-1))]
}

func (c *counters) attempt(t time.Time) { c.sec(t).att.Add(1) }
func (c *counters) ok(t time.Time)      { c.sec(t).ok.Add(1) }

func (c *counters) fail(t time.Time, reason string) {
	c.sec(t).fail.Add(1)
	c.mu.Lock()
	c.reasons[reason]++
	c.mu.Unlock()
}

// totals returns the per-second rows (up to the last non-empty one) and
// the sums.
func (c *counters) totals() (rows []Second, att, ok, fail int, reasons map[string]int) {
	last := -1
	for i := range c.secs {
		s := &c.secs[i]
		r := Second{T: i, Attempted: int(s.att.Load()), Succeeded: int(s.ok.Load()), Failed: int(s.fail.Load())}
		rows = append(rows, r)
		if r != (Second{T: i}) {
			last = i
		}
		att, ok, fail = att+r.Attempted, ok+r.Succeeded, fail+r.Failed
	}
	c.mu.Lock()
	reasons = make(map[string]int, len(c.reasons))
	for k, v := range c.reasons {
		reasons[k] = v
	}
	c.mu.Unlock()
	return rows[:last+1], att, ok, fail, reasons
}

// live calls fn (when set) with each second once it has passed, and
// from the returned stop with the seconds left (up to the last one with
// anything in it).
func (c *counters) live(fn func(Second)) (stop func()) {
	if fn == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	next := 0
	row := func(s int) Second {
		x := &c.secs[s]
		return Second{T: s, Attempted: int(x.att.Load()), Succeeded: int(x.ok.Load()), Failed: int(x.fail.Load())}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
			}
			for ; next < len(c.secs) && time.Since(c.start) >= time.Duration(next+1)*time.Second; next++ {
				fn(row(next))
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		rows, _, _, _, _ := c.totals()
		for ; next < len(rows); next++ {
			fn(row(next))
		}
	}
}

// cpuNow is this process's user+system CPU time.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// selfLimit watches the generator's own health during a run: how far it
// fell behind its schedule, and its CPU use.
type selfLimit struct {
	cpu0    time.Duration
	host0   [2]uint64 // busy, total jiffies of the host at the start
	start   time.Time
	maxLag  atomic.Int64 // ns
	lateSum atomic.Int64 // attempts started more than lateAfter behind schedule
}

// lateAfter is how far behind its schedule an attempt may start before
// it counts as late (the generator not keeping its offered rate).
const lateAfter = 50 * time.Millisecond

func newSelfLimit() *selfLimit {
	return &selfLimit{cpu0: cpuNow(), host0: hostJiffies(), start: time.Now()}
}

// hostJiffies reads the host's busy and total CPU time (/proc/stat).
func hostJiffies() [2]uint64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return [2]uint64{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return [2]uint64{}
	}
	var busy, total uint64
	for i, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		if i >= 7 { // guest time is already in user
			break
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return [2]uint64{busy, total}
}

func (s *selfLimit) behind(lag time.Duration) {
	for {
		old := s.maxLag.Load()
		if int64(lag) <= old || s.maxLag.CompareAndSwap(old, int64(lag)) {
			break
		}
	}
	if lag > lateAfter {
		s.lateSum.Add(1)
	}
}

// Limit says whether the generator, not the server, may have set the
// figures of a run.
type Limit struct {
	// CPUShare is the generator's CPU over the run, as a share of the
	// cores Go may use (GOMAXPROCS).
	CPUShare   float64 `json:"cpu_share"`
	CPUSeconds float64 `json:"cpu_s"`
	// HostBusy is the whole host's CPU use over the run (0..1): near 1,
	// the generator and the server competed for the CPU, and neither's
	// figure is its own limit.
	HostBusy float64 `json:"host_busy"`
	// MaxLagMS is how far (ms) the generator fell behind its schedule at
	// worst; Late counts attempts started more than 50 ms late.
	MaxLagMS float64 `json:"max_lag_ms"`
	Late     int     `json:"late"`
	// Offered is what it started of what the rate and duration asked
	// (MaxCount capped).
	Offered, Wanted int
	// Reasons is empty when the generator kept up.
	Reasons []string `json:"reasons,omitempty"`
}

func (l Limit) String() string {
	if len(l.Reasons) == 0 {
		return fmt.Sprintf("generator kept up (CPU %.0f %% of %d cores, host %.0f %% busy, max lag %.0f ms)", 100*l.CPUShare, runtime.GOMAXPROCS(0), 100*l.HostBusy, l.MaxLagMS)
	}
	return "GENERATOR-LIMITED: " + strings.Join(l.Reasons, "; ")
}

// limit judges the run: it offered `offered` of `wanted` attempts.
func (s *selfLimit) limit(offered, wanted int) Limit {
	wall := time.Since(s.start)
	cpu := cpuNow() - s.cpu0
	l := Limit{CPUSeconds: cpu.Seconds(), MaxLagMS: float64(s.maxLag.Load()) / 1e6, Late: int(s.lateSum.Load()), Offered: offered, Wanted: wanted}
	if wall > 0 {
		l.CPUShare = cpu.Seconds() / wall.Seconds() / float64(runtime.GOMAXPROCS(0))
	}
	if wanted > 0 && float64(offered) < 0.99*float64(wanted) {
		l.Reasons = append(l.Reasons, fmt.Sprintf("offered %d of %d attempts (could not keep the rate)", offered, wanted))
	}
	if l.Late > 0 && float64(l.Late) > 0.01*float64(max(offered, 1)) {
		l.Reasons = append(l.Reasons, fmt.Sprintf("%d attempts started > %v behind schedule (max lag %.0f ms)", l.Late, lateAfter, l.MaxLagMS))
	}
	if h1 := hostJiffies(); h1[1] > s.host0[1] {
		l.HostBusy = float64(h1[0]-s.host0[0]) / float64(h1[1]-s.host0[1])
	}
	if l.HostBusy > 0.95 && wall > 500*time.Millisecond {
		l.Reasons = append(l.Reasons, fmt.Sprintf("host CPU %.0f %% busy (generator and server share it)", 100*l.HostBusy))
	}
	if l.CPUShare > 0.85 && wall > 500*time.Millisecond {
		l.Reasons = append(l.Reasons, fmt.Sprintf("own CPU %.0f %% of %d cores (saturated)", 100*l.CPUShare, runtime.GOMAXPROCS(0)))
	}
	return l
}

// paceGrace is how long past the end of its window a late generator may
// go on starting the attempts it owes.
const paceGrace = time.Second

// pace starts attempts at rate per second from start until until (or n
// attempts, or ctx done), calling fire(i, due) for each in the pacing
// goroutine (fire must not block). It records how far behind the
// schedule each attempt started.
func pace(done <-chan struct{}, rate float64, start, until time.Time, n int, lim *selfLimit, fire func(i int)) int {
	interval := time.Duration(float64(time.Second) / rate)
	i := 0
	for i < n {
		due := start.Add(time.Duration(i) * interval)
		if !due.Before(until) {
			break
		}
		now := time.Now()
		if now.After(until.Add(paceGrace)) {
			break // too far behind: stop, and the count offered tells
		}
		if wait := due.Sub(now); wait > 0 {
			// Sleep in steps of at least 1 ms; a batch then catches up.
			select {
			case <-done:
				return i
			case <-time.After(max(wait, time.Millisecond)):
			}
			continue
		}
		select {
		case <-done:
			return i
		default:
		}
		lim.behind(now.Sub(due))
		fire(i)
		i++
	}
	return i
}

func sortedReasons(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool { return m[keys[a]] > m[keys[b]] || m[keys[a]] == m[keys[b]] && keys[a] < keys[b] })
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return out
}
