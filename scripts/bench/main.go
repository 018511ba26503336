// Command bench measures the SIP balancer under SIPp load against
// Kamailio's dispatcher, the same way in the same run: SIPp callers ->
// the balancer (stateful, record-routing, round robin) -> two SIPp Cores,
// all on loopback.
//
// For each balancer, in phases:
//
//  1. steps: short steps of rising call rate; the highest clean one
//     (<= 0.1 % failed, INVITE->200 p99 < 200 ms) is the candidate;
//  2. sustained: that rate held for -sustain (60 s, longer than the 32 s
//     transaction lifetime), backing off once to the step below it
//     (or 20 % below the first step) when it does not hold;
//     clean also means every ACK and BYE reached the Core that took the
//     call (the Cores' own counts, not the caller's); CPU-s per 1,000
//     calls, RSS at the end, goroutines, and (sipedge) a CPU profile and
//     allocations per call from two pprof allocs profiles;
//  3. overload: twice the sustained rate for -overload; completed calls
//     per second against the sustained rate, calls refused with 503,
//     Cores marked down (a healthy Core must stay up);
//  4. recovery: the sustained rate again right after: its first 5 s on
//     their own, then 0 failed calls (-rounds repeats 3 and 4;
//     -overload-only RATE runs only them, overload.go);
//  5. sources: the sustained rate for -untrusted from the box itself
//     (127.0.0.1, trusted) and then from callers outside
//     security.trusted (127.0.0.2: sipedge's routing policy checks every
//     request of theirs), CPU per call of each (untrusted.go);
//  6. dialogs (sipedge): long calls until -dialogs dialogs are up at once,
//     peak RSS;
//  7. stream rows (-stream, on by default; -stream-only runs only them):
//     calls over long-lived TCP and TLS connections, new TLS handshakes
//     per second, memory per idle TCP and TLS connection, CPU per call,
//     each row against a fresh balancer process (stream.go).
//
// Results (summary.txt, results.json, profiles, logs, plot.png) go to one
// folder.
//
//	go run ./scripts/bench -out results/bench
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

type options struct {
	out           string
	bin           string
	targets       []string
	steps         []int
	stepDur       time.Duration
	sustain       time.Duration
	overload      time.Duration
	recover       time.Duration
	rounds        int
	overloadOnly  int
	untrusted     time.Duration
	callMS        int
	dialogs       int
	dialogRate    int
	dialogTargets []string
	scenarios     string
	strict        bool
	env           []string
	sipYAML       string

	// The stream rows (stream.go).
	stream        bool
	streamOnly    bool
	streamRows    []string
	streamRates   []int
	streamHSRates []int
	streamStep    time.Duration
	streamConns   int
	streamIdle    int
	streamPort    int
}

// result is one balancer's figures.
type result struct {
	Target       string      `json:"target"`
	Steps        []callerRun `json:"steps"`
	CleanCPS     int         `json:"clean_step_cps"`
	Sustained    *phase      `json:"sustained"`
	SustainedCPS int         `json:"sustained_cps"` // 0: no rate held
	CPUPer1000   float64     `json:"cpu_s_per_1000_calls"`
	RSSMiB       float64     `json:"rss_mib_after_sustained"`
	Goroutines   []int       `json:"goroutines_per_step"`
	Rounds       []round     `json:"overload_rounds,omitempty"`
	Profile      string      `json:"overload_cpu_profile,omitempty"` // sipedge: pprof file of the first round
	Sources      *sources    `json:"sources,omitempty"`
	Dialogs      *dialogRun  `json:"dialogs,omitempty"`
	UDPDrops     int64       `json:"udp_drops_total"`
	Series       []sample    `json:"series"`
	mu           sync.Mutex
}

// phase is one caller run with what the Cores and the balancer saw.
type phase struct {
	callerRun
	Cores          coreSnap `json:"cores"`
	Clean          bool     `json:"clean"`
	Why            string   `json:"why,omitempty"`
	UDPDrops       int64    `json:"udp_drops"`                     // on the balancer's listen socket
	SideDrops      int64    `json:"udp_drops_core_side,omitempty"` // on sipedge's Core-facing sockets
	CoreDrops      int64    `json:"udp_drops_at_cores,omitempty"`  // on the Cores' own sockets
	CoresDown      int      `json:"cores_marked_down"`
	NoCore         int      `json:"no_core_refusals"`
	MallocsPerCall float64  `json:"mallocs_per_call,omitempty"`      // runtime.MemStats.Mallocs delta / calls
	AllocsPerCall  float64  `json:"pprof_allocs_per_call,omitempty"` // alloc_objects delta of two allocs profiles / calls
	Shed503        int      `json:"shed_503,omitempty"`              // sipedge: refused by its admission control
	Received       int      `json:"datagrams_received,omitempty"`    // sipedge: messages it read
}

type dialogRun struct {
	Rate        int     `json:"rate"`
	CallMS      int     `json:"call_ms"`
	Calls       int     `json:"calls"`
	Failed      int     `json:"failed"`
	PeakDialogs int     `json:"peak_dialogs"`
	PeakRSSMiB  float64 `json:"peak_rss_mib"`
	EndRSSMiB   float64 `json:"rss_mib_after"`
	EndDialogs  int     `json:"dialogs_after"`
}

type sample struct {
	T       float64 `json:"t"`
	Target  string  `json:"target"`
	Rate    int     `json:"rate"`
	RSSMiB  float64 `json:"rss_mib"`
	CPU     float64 `json:"cpu_s"`
	Failed  float64 `json:"failed_per_s"`
	Dialogs int     `json:"dialogs,omitempty"`
}

func main() {
	var o options
	var targets, steps, dialogTargets, env string
	flag.StringVar(&o.out, "out", "results/bench", "results folder")
	flag.StringVar(&o.bin, "bin", "bin/sipedge", "sipedge binary")
	flag.StringVar(&targets, "targets", "kamailio,sipedge", "balancers to measure, in order")
	flag.StringVar(&steps, "steps", "2000,3000,4000,5000,6000,7000,8000", "call rates (CPS) to step through")
	flag.DurationVar(&o.stepDur, "step", 10*time.Second, "length of each step")
	flag.DurationVar(&o.sustain, "sustain", 60*time.Second, "length of the sustained run at the highest clean rate")
	flag.DurationVar(&o.overload, "overload", 60*time.Second, "length of the overload run at twice the sustained rate (0: skip)")
	flag.DurationVar(&o.recover, "recover", 10*time.Second, "length of the normal-load run judged after the overload (after its first 5 s)")
	flag.IntVar(&o.rounds, "rounds", 1, "overload and recovery rounds")
	flag.IntVar(&o.overloadOnly, "overload-only", 0, "run only the overload rounds, with this sustained rate (CPS)")
	flag.DurationVar(&o.untrusted, "untrusted", 20*time.Second, "length of each of the two runs at the sustained rate, callers trusted and outside security.trusted, each in two halves (0: skip)")
	flag.IntVar(&o.callMS, "call-ms", 100, "call length in milliseconds")
	flag.IntVar(&o.dialogs, "dialogs", 100000, "concurrent dialogs to hold with long calls (0: skip)")
	flag.IntVar(&o.dialogRate, "dialog-rate", 3000, "call rate of the dialog test")
	flag.StringVar(&dialogTargets, "dialog-targets", "sipedge", "balancers that run the dialog test")
	flag.StringVar(&o.scenarios, "scenarios", "scripts/bench/scenarios", "SIPp scenario folder")
	flag.BoolVar(&o.strict, "strict-order", false, "fail calls whose 180 arrives after their 200")
	flag.StringVar(&env, "env", "", "extra environment for sipedge, comma-separated (e.g. GOGC=200)")
	flag.StringVar(&o.sipYAML, "sip", "", "an extra line for sipedge's sip: section, e.g. 'overload: {queue_delay: 100ms}'")
	var streamRows, streamRates, streamHSRates string
	flag.BoolVar(&o.stream, "stream", true, "run the TCP and TLS rows after the UDP ones (stream.go)")
	flag.BoolVar(&o.streamOnly, "stream-only", false, "run only the TCP and TLS rows")
	flag.StringVar(&streamRows, "stream-rows", strings.Join(streamRowNames, ","), "TCP and TLS rows to run")
	flag.StringVar(&streamRates, "stream-rates", "500,1000,2000,3000,4000,5000,6000,8000", "call rates (CPS) of the calls-tcp and calls-tls rows")
	flag.StringVar(&streamHSRates, "stream-hs-rates", "200,500,1000,1500,2000,3000,4000", "new TLS connections per second of the handshakes row")
	flag.DurationVar(&o.streamStep, "stream-step", 5*time.Second, "length of each step of the TCP and TLS rows")
	flag.IntVar(&o.streamConns, "stream-conns", 10, "long-lived connections that carry the calls")
	flag.IntVar(&o.streamIdle, "stream-idle", 10000, "idle connections of the memory rows")
	flag.IntVar(&o.streamPort, "stream-port", 26500, "first port of the TCP and TLS rows (each balancer uses 41 from its base, base+100 per balancer)")
	flag.Parse()
	var err error
	if o.streamRows, err = parseRows(streamRows); err != nil {
		fatal("bad -stream-rows: %v", err)
	}
	if o.streamRates, err = parseInts(streamRates); err != nil {
		fatal("bad -stream-rates: %v", err)
	}
	if o.streamHSRates, err = parseInts(streamHSRates); err != nil {
		fatal("bad -stream-hs-rates: %v", err)
	}
	if o.streamIdle < 1 || o.streamIdle > streamMaxConns-1000 {
		fatal("bad -stream-idle %d: 1..%d (the balancers' connection caps are %d)", o.streamIdle, streamMaxConns-1000, streamMaxConns)
	}
	o.targets = strings.Split(targets, ",")
	o.dialogTargets = strings.Split(dialogTargets, ",")
	if env != "" {
		o.env = strings.Split(env, ",")
	}
	for _, s := range strings.Split(steps, ",") {
		n, err := strconv.Atoi(s)
		if err != nil {
			fatal("bad -steps: %v", err)
		}
		o.steps = append(o.steps, n)
	}
	abs, _ := filepath.Abs(o.out)
	o.out = abs
	o.scenarios, _ = filepath.Abs(o.scenarios)
	o.bin, _ = filepath.Abs(o.bin)
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		fatal("%v", err)
	}
	stopChildrenOnSignal()
	start := time.Now()
	var results []*result
	for i, name := range o.targets {
		if o.streamOnly {
			break
		}
		r, err := measure(o, name, 26000+i*100, start)
		if err != nil {
			fatal("%s: %v", name, err)
		}
		results = append(results, r)
	}
	var streams []*streamResult
	for i, name := range o.targets {
		if !o.streamOnly && (!o.stream || o.overloadOnly > 0) {
			break // -overload-only runs only the overload rounds
		}
		streams = append(streams, measureStream(o, name, o.streamPort+i*100))
	}
	report(o, results, streams, time.Since(start))
}

func fatal(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(1)
}

// why tells what makes a run unclean ("" when clean).
func clean(r callerRun) bool { return why(r) == "" }

func why(r callerRun) string {
	switch {
	case r.Calls == 0:
		return "no calls"
	case float64(r.Failed) > 0.001*float64(r.Calls):
		return fmt.Sprintf("%d failed (%.2f %%)", r.Failed, 100*float64(r.Failed)/float64(r.Calls))
	case r.P99ms == 0 || r.P99ms > 200:
		return fmt.Sprintf("p99 >= %d ms", r.P99ms)
	}
	return ""
}

// coresWhy checks that every call the caller completed was completed at
// a Core: its ACK and BYE reached the Core that answered the INVITE (a
// BYE to the wrong Core is an unexpected message there).
func coresWhy(r callerRun, c coreSnap) string {
	switch {
	case c.ACKs < r.Success:
		return fmt.Sprintf("%d ACKs at the Cores for %d calls", c.ACKs, r.Success)
	case c.BYEs < r.Success:
		return fmt.Sprintf("%d BYEs at the Cores for %d calls", c.BYEs, r.Success)
	case float64(c.Unexpected+c.Failed) > 0.001*float64(r.Calls):
		// The same 0.1 % as the caller's: a Core's call fails when, e.g.,
		// a retransmitted INVITE arrives after the call ended.
		return fmt.Sprintf("Cores: %d unexpected messages, %d failed calls", c.Unexpected, c.Failed)
	}
	return ""
}

// settle waits, after a failed run, until the Cores have given up on
// its leftovers (a SIPp Core fails an unACKed 200 after its
// retransmissions, 16-32 s later): until their failed and unexpected
// counts have not moved for 5 s, at least 20 s and at most 60 s, so that
// the next run's Core counts are its own.
func settle(cores []*sippCore) {
	start, last, since := time.Now(), snapCores(cores), time.Now()
	for time.Since(start) < 60*time.Second {
		time.Sleep(time.Second)
		if c := snapCores(cores); c.Failed != last.Failed || c.Unexpected != last.Unexpected {
			last, since = c, time.Now()
		}
		if time.Since(start) >= 20*time.Second && time.Since(since) >= 5*time.Second {
			return
		}
	}
}

func measure(o options, name string, base int, t0 time.Time) (*result, error) {
	dir := filepath.Join(o.out, name)
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	corePorts := []int{base + 20, base + 30} // base+10: sipedge's Core-facing socket (core_port default)
	var cores []*sippCore
	for _, p := range corePorts {
		cdir := filepath.Join(dir, fmt.Sprintf("core%d", p))
		os.MkdirAll(cdir, 0o755)
		c, err := startCore(cdir, p, filepath.Join(o.scenarios, "core.xml"))
		if err != nil {
			return nil, err
		}
		cores = append(cores, c)
	}
	defer func() {
		for _, c := range cores {
			c.stop()
		}
	}()
	var t *target
	var err error
	switch name {
	case "kamailio":
		t, err = startKamailio(dir, base, corePorts)
	case "sipedge":
		t, err = startSipedge(dir, o.bin, base, corePorts, o.env, o.sipYAML, nil)
	default:
		err = fmt.Errorf("unknown target %q", name)
	}
	if err != nil {
		return nil, err
	}
	defer t.stop()
	r := &result{Target: name}
	caller := filepath.Join(o.scenarios, "caller.xml")
	if o.strict {
		caller = filepath.Join(o.scenarios, "caller-strict.xml")
	}
	addr := fmt.Sprintf("127.0.0.1:%d", base)
	callerPort := base + 50
	callerIP := trustedIP

	// Sample RSS, CPU (and sipedge's dialogs) every second for the plot.
	var cur int
	var curMu sync.Mutex
	stopSampling := make(chan struct{})
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tk.C:
				curMu.Lock()
				rate := cur
				curMu.Unlock()
				s := sample{T: time.Since(t0).Seconds(), Target: name, Rate: rate, RSSMiB: rssMiB(t.pid()), CPU: cpuSeconds(t.pid())}
				r.mu.Lock()
				r.Series = append(r.Series, s)
				r.mu.Unlock()
			}
		}
	}()
	setRate := func(n int) { curMu.Lock(); cur = n; curMu.Unlock() }

	run := func(label, scenario string, rate int, dur time.Duration, callMS int, during func()) (phase, error) {
		setRate(rate)
		cpu0 := cpuSeconds(t.pid())
		core0 := snapCores(cores)
		drops0, side0, atCores0 := udpDrops(base), udpDrops(t.sidePorts()...), udpDrops(corePorts...)
		downs0, noCore0 := t.downs()
		start := time.Since(t0).Seconds()
		var wg sync.WaitGroup
		if during != nil {
			wg.Add(1)
			go func() { defer wg.Done(); during() }()
		}
		cr, err := runCaller(dir, scenario, callerIP, addr, callerPort, rate, dur, callMS)
		wg.Wait()
		setRate(0)
		cr.Phase, cr.Start, cr.End = label, start, time.Since(t0).Seconds()
		cr.CPUSeconds = cpuSeconds(t.pid()) - cpu0
		cr.RSSMiB = rssMiB(t.pid())
		if t.goroutines != nil {
			cr.Goroutines = t.goroutines()
		}
		time.Sleep(2500 * time.Millisecond) // the Cores rewrite their counts every second
		p := phase{callerRun: cr, Cores: snapCores(cores).sub(core0), UDPDrops: udpDrops(base) - drops0,
			SideDrops: udpDrops(t.sidePorts()...) - side0, CoreDrops: udpDrops(corePorts...) - atCores0}
		downs, noCore := t.downs()
		p.CoresDown, p.NoCore = downs-downs0, noCore-noCore0
		p.Why = why(cr)
		if p.Why == "" {
			p.Why = coresWhy(cr, p.Cores)
		}
		p.Clean = p.Why == ""
		// Failures per second, for the plot.
		r.mu.Lock()
		for i := range r.Series {
			if s := &r.Series[i]; s.T >= p.Start && s.T <= p.End {
				s.Failed = float64(p.Failed) / max(p.End-p.Start, 1)
			}
		}
		r.mu.Unlock()
		status := "clean"
		if !p.Clean {
			status = "NOT clean: " + p.Why
		}
		fmt.Printf("%-8s %-9s %5d CPS %3.0fs: %6d calls, %6d ok, %5d failed, %5d refused 503, p99<%dms, %.3f CPU-s/1000, RSS %.0f MiB, goroutines %d, Cores ACK %d BYE %d, UDP drops %d (Core side %d, at Cores %d), Cores marked down %d; %s\n",
			name, label, rate, dur.Seconds(), p.Calls, p.Success, p.Failed, p.Refused503, p.P99ms, 1000*p.CPUSeconds/float64(max(p.Success, 1)),
			p.RSSMiB, p.Goroutines, p.Cores.ACKs, p.Cores.BYEs, p.UDPDrops, p.SideDrops, p.CoreDrops, p.CoresDown, status)
		return p, err
	}

	if _, err := run("warm-up", caller, 50, 3*time.Second, o.callMS, nil); err != nil { // Cores probed up
		return nil, err
	}
	if o.overloadOnly > 0 {
		r.SustainedCPS = o.overloadOnly
		if err := overloadRounds(o, r, run, cores, t); err != nil {
			return nil, err
		}
		r.UDPDrops = udpDrops(base)
		close(stopSampling)
		<-samplerDone
		return r, nil
	}
	retried := false
	for _, rate := range o.steps {
		p, err := run("step", caller, rate, o.stepDur, o.callMS, nil)
		if err != nil {
			return nil, err
		}
		if !p.Clean && !retried {
			// On a shared box one stall fails a 10 s step: repeat it once
			// per balancer, after the Cores have failed the last run's
			// leftovers (a SIPp Core gives up on an unACKed 200 after its
			// 5 retransmissions, ~16 s).
			retried = true
			settle(cores)
			if p, err = run("step-again", caller, rate, o.stepDur, o.callMS, nil); err != nil {
				return nil, err
			}
		}
		r.Steps = append(r.Steps, p.callerRun)
		r.Goroutines = append(r.Goroutines, p.Goroutines)
		if !p.Clean {
			break
		}
		r.CleanCPS = rate
		time.Sleep(2 * time.Second)
	}

	// Hold the highest clean rate for the sustain period; back off once
	// to the step below if it does not hold.
	rate := r.CleanCPS
	if rate == 0 && len(o.steps) > 0 {
		rate = o.steps[0] / 2
	}
	for try := 0; try < 2 && rate > 0; try++ {
		// After a failed run the Cores go on failing its unanswered calls
		// for ~16 s (5 retransmissions of a 200 without ACK): let them,
		// so that the next run's Core counts are its own.
		if n := len(r.Steps); try > 0 || (n > 0 && !clean(r.Steps[n-1])) {
			settle(cores)
		}
		time.Sleep(3 * time.Second)
		var m0, m1 int64
		var prof0, prof1 string
		during := func() {
			if t.ctl == nil {
				return
			}
			m0 = t.mallocs()
			prof0 = filepath.Join(dir, fmt.Sprintf("allocs-%d-start.pb.gz", rate))
			t.ctl(nil, "debug", "profile", "allocs", "0", prof0)
			time.Sleep(min(15*time.Second, o.sustain/4))
			// 10 s of 60: the profiler's own cost stays small in the
			// run's CPU figure (Kamailio runs without one).
			cpuSecs := int(max(min(10*time.Second, o.sustain/6), time.Second).Seconds())
			t.ctl(nil, "debug", "profile", "cpu", strconv.Itoa(cpuSecs), filepath.Join(dir, fmt.Sprintf("cpu-%d.pb.gz", rate)))
		}
		p, err := run("sustained", caller, rate, o.sustain, o.callMS, during)
		if err != nil {
			return nil, err
		}
		if t.ctl != nil {
			m1 = t.mallocs()
			prof1 = filepath.Join(dir, fmt.Sprintf("allocs-%d-end.pb.gz", rate))
			t.ctl(nil, "debug", "profile", "allocs", "0", prof1)
			t.ctl(nil, "debug", "profile", "heap", "0", filepath.Join(dir, fmt.Sprintf("heap-%d.pb.gz", rate)))
			t.ctl(nil, "debug", "profile", "goroutine", "0", filepath.Join(dir, fmt.Sprintf("goroutine-%d.pb.gz", rate)))
			// The figure counts every call offered, refused or failed ones too.
			calls := float64(max(p.Calls, 1))
			p.MallocsPerCall = float64(m1-m0) / calls
			p.AllocsPerCall = pprofDelta(prof0, prof1, "alloc_objects") / calls
			pprofTop(filepath.Join(dir, fmt.Sprintf("cpu-%d.pb.gz", rate)), filepath.Join(dir, fmt.Sprintf("cpu-%d-top.txt", rate)), "")
			pprofTop(prof1, filepath.Join(dir, fmt.Sprintf("allocs-%d-top.txt", rate)), prof0)
		}
		r.Sustained = &p
		if p.Clean {
			r.SustainedCPS = rate
			break
		}
		rate = backoff(rate, o.steps)
	}
	if s := r.Sustained; s != nil {
		r.CPUPer1000 = 1000 * s.CPUSeconds / float64(max(s.Success, 1))
		r.RSSMiB = s.RSSMiB
	}

	// The same rate from the box itself and from strangers, in halves
	// (trusted, untrusted, untrusted, trusted: what the run before left
	// behind weighs on both the same).
	if o.untrusted > 0 && r.SustainedCPS > 0 {
		s := &sources{}
		for _, ip := range sourceOrder {
			time.Sleep(3 * time.Second)
			callerIP = ip
			p, err := run("from-"+ip, caller, r.SustainedCPS, o.untrusted/2, o.callMS, nil)
			callerIP = trustedIP
			if err != nil {
				return nil, err
			}
			s.add(ip, p)
		}
		r.Sources = s
	}

	// Overload: twice the sustained rate, then normal load again.
	if o.overload > 0 && r.SustainedCPS > 0 {
		if err := overloadRounds(o, r, run, cores, t); err != nil {
			return nil, err
		}
	}

	// Dialogs: long calls until o.dialogs are up at once.
	if o.dialogs > 0 && slices.Contains(o.dialogTargets, name) && t.ctl != nil {
		time.Sleep(3 * time.Second)
		d := &dialogRun{Rate: o.dialogRate}
		dur := time.Duration(float64(o.dialogs)*1.1/float64(o.dialogRate)) * time.Second
		d.CallMS = int(dur.Milliseconds()) + 10000
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			tk := time.NewTicker(2 * time.Second)
			defer tk.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tk.C:
				}
				n := t.dialogCount()
				rss := rssMiB(t.pid())
				if n > d.PeakDialogs {
					d.PeakDialogs = n
				}
				d.PeakRSSMiB = max(d.PeakRSSMiB, rss)
			}
		}()
		p, err := run("dialogs", caller, o.dialogRate, dur, d.CallMS, nil)
		close(stop)
		wg.Wait()
		if err != nil {
			return nil, err
		}
		d.Calls, d.Failed = p.Calls, p.Failed
		d.EndRSSMiB, d.EndDialogs = rssMiB(t.pid()), t.dialogCount()
		r.Dialogs = d
		fmt.Printf("%-8s dialogs: peak %d dialogs at once, peak RSS %.0f MiB, after %.0f MiB with %d dialogs left, %d failed calls\n",
			name, d.PeakDialogs, d.PeakRSSMiB, d.EndRSSMiB, d.EndDialogs, d.Failed)
	}
	r.UDPDrops = udpDrops(base)
	close(stopSampling)
	<-samplerDone
	return r, nil
}

var totalRE = regexp.MustCompile(`of ([0-9.]+)([kMG]?) total`)

// pprofDelta is the total of sample index idx in profile b minus profile a
// (go tool pprof -base).
func pprofDelta(a, b, idx string) float64 {
	out, err := exec.Command("go", "tool", "pprof", "-sample_index="+idx, "-top", "-nodecount=1", "-base", a, b).CombinedOutput()
	if err != nil {
		return 0
	}
	m := totalRE.FindSubmatch(out)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	switch string(m[2]) {
	case "k":
		v *= 1e3
	case "M":
		v *= 1e6
	case "G":
		v *= 1e9
	}
	return v
}

// pprofTop writes `go tool pprof -top` (flat, then -cum) of a profile,
// minus base when given (allocation counts), to out and out-cum.
func pprofTop(prof, out, base string) {
	args := []string{"tool", "pprof", "-nodecount=40"}
	if base != "" {
		args = append(args, "-sample_index=alloc_objects", "-base", base)
	}
	flat, _ := exec.Command("go", append(append(args, "-top"), prof)...).CombinedOutput()
	os.WriteFile(out, flat, 0o644)
	cum, _ := exec.Command("go", append(append(args, "-top", "-cum"), prof)...).CombinedOutput()
	os.WriteFile(strings.TrimSuffix(out, ".txt")+"-cum.txt", cum, 0o644)
}

// backoff is the rate to try after a sustained run at rate failed: the
// highest step below it (clean, as the steps stop at the first failure),
// else 80 % of it.
func backoff(rate int, steps []int) int {
	next := 0
	for _, s := range steps {
		if s < rate && s > next {
			next = s
		}
	}
	if next == 0 {
		return rate * 8 / 10
	}
	return next
}
