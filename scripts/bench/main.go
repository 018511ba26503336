// Command bench measures the SIP balancer under SIPp load against
// Kamailio's dispatcher, the same way in the same run: a SIPp caller ->
// the balancer (stateful, record-routing, round robin) -> two SIPp Cores,
// all on loopback.
//
// For each balancer it steps the call rate (short steps), then holds the
// highest clean rate for the sustain period (longer than the 32 s
// transaction lifetime), and prints: the highest clean rate (zero failed
// calls, INVITE->200 p99 under 200 ms), the sustained rate, CPU seconds
// per 1,000 calls, RSS, goroutines (sipedge), kernel UDP drops, and every
// ACK/BYE counted at the Cores; then sipedge's figures as ratios to
// Kamailio's. Results, logs and a plot go to one folder.
//
//	go run ./scripts/bench -out results/bench
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

type options struct {
	out       string
	bin       string
	targets   []string
	steps     []int
	stepDur   time.Duration
	sustain   time.Duration
	callMS    int
	scenarios string
	strict    bool
}

// result is one balancer's figures.
type result struct {
	Target         string      `json:"target"`
	Steps          []callerRun `json:"steps"`
	CleanCPS       int         `json:"clean_cps"`
	Sustained      *callerRun  `json:"sustained"`
	SustainedCPS   int         `json:"sustained_cps"`
	CPUPer1000     float64     `json:"cpu_s_per_1000_calls"`
	RSSMiB         float64     `json:"rss_mib"`
	Goroutines     int         `json:"goroutines"`
	UDPDrops       int64       `json:"udp_drops"`
	CoreACKs       int         `json:"core_acks"`
	CoreBYEs       int         `json:"core_byes"`
	CallerSuccess  int         `json:"caller_success"`
	Series         []sample    `json:"series"`
}

type sample struct {
	T      float64 `json:"t"`
	Target string  `json:"target"`
	Rate   int     `json:"rate"`
	RSSMiB float64 `json:"rss_mib"`
	CPU    float64 `json:"cpu_s"`
}

func main() {
	var o options
	var targets, steps string
	flag.StringVar(&o.out, "out", "results/bench", "results folder")
	flag.StringVar(&o.bin, "bin", "bin/sipedge", "sipedge binary")
	flag.StringVar(&targets, "targets", "kamailio,sipedge", "balancers to measure, in order")
	flag.StringVar(&steps, "steps", "500,1000,2000,3000,4000,5000,6000", "call rates (CPS) to step through")
	flag.DurationVar(&o.stepDur, "step", 10*time.Second, "length of each step")
	flag.DurationVar(&o.sustain, "sustain", 60*time.Second, "length of the sustained run at the highest clean rate")
	flag.IntVar(&o.callMS, "call-ms", 100, "call length in milliseconds")
	flag.StringVar(&o.scenarios, "scenarios", "scripts/bench/scenarios", "SIPp scenario folder")
	flag.BoolVar(&o.strict, "strict-order", false, "fail calls whose 180 arrives after their 200")
	flag.Parse()
	o.targets = strings.Split(targets, ",")
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
	start := time.Now()
	var results []*result
	for i, name := range o.targets {
		r, err := measure(o, name, 26000+i*100, start)
		if err != nil {
			fatal("%s: %v", name, err)
		}
		results = append(results, r)
	}
	report(o, results)
}

func fatal(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(1)
}

func clean(r callerRun) bool {
	return r.Calls > 0 && float64(r.Failed) <= 0.001*float64(r.Calls) && r.P99ms > 0 && r.P99ms <= 200
}

func measure(o options, name string, base int, t0 time.Time) (*result, error) {
	dir := filepath.Join(o.out, name)
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	corePorts := []int{base + 10, base + 20}
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
		t, err = startSipedge(dir, o.bin, base, corePorts)
	default:
		err = fmt.Errorf("unknown target %q", name)
	}
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			t.stop()
		}
	}()
	r := &result{Target: name}
	caller := filepath.Join(o.scenarios, "caller.xml")
	if o.strict {
		caller = filepath.Join(o.scenarios, "caller-strict.xml")
	}
	addr := fmt.Sprintf("127.0.0.1:%d", base)
	callerPort := base + 50

	// Sample RSS and CPU every second for the plot.
	stopSampling := make(chan struct{})
	var cur int
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
				r.Series = append(r.Series, sample{T: time.Since(t0).Seconds(), Target: name, Rate: cur, RSSMiB: rssMiB(t.pid()), CPU: cpuSeconds(t.pid())})
			}
		}
	}()

	step := func(rate int, dur time.Duration) (callerRun, error) {
		cur = rate
		cpu0 := cpuSeconds(t.pid())
		run, err := runCaller(dir, caller, addr, callerPort, rate, dur, o.callMS)
		cur = 0
		run.CPUSeconds = cpuSeconds(t.pid()) - cpu0
		run.RSSMiB = rssMiB(t.pid())
		if t.goroutines != nil {
			run.Goroutines = t.goroutines()
		}
		fmt.Printf("%-9s %5d CPS %4.0fs: %6d calls, %5d ok, %4d failed, p99<%dms, %.2f CPU-s/1000, RSS %.0f MiB, goroutines %d\n",
			name, rate, dur.Seconds(), run.Calls, run.Success, run.Failed, run.P99ms, 1000*run.CPUSeconds/float64(max(run.Success, 1)), run.RSSMiB, run.Goroutines)
		return run, err
	}

	warm, err := step(50, 3*time.Second) // warm up: Cores probed up
	if err != nil {
		return nil, err
	}
	r.CallerSuccess = warm.Success
	for _, rate := range o.steps {
		run, err := step(rate, o.stepDur)
		if err != nil {
			return nil, err
		}
		r.Steps = append(r.Steps, run)
		if !clean(run) {
			break
		}
		r.CleanCPS = rate
		time.Sleep(2 * time.Second)
	}
	// Hold the highest clean rate; back off 20 % once if it does not hold.
	rate := r.CleanCPS
	for try := 0; try < 2 && rate > 0; try++ {
		time.Sleep(3 * time.Second)
		run, err := step(rate, o.sustain)
		if err != nil {
			return nil, err
		}
		r.Sustained = &run
		if clean(run) {
			r.SustainedCPS = rate
			break
		}
		rate = rate * 8 / 10
	}
	if r.Sustained != nil {
		r.CPUPer1000 = 1000 * r.Sustained.CPUSeconds / float64(max(r.Sustained.Success, 1))
		r.RSSMiB = r.Sustained.RSSMiB
		r.Goroutines = r.Sustained.Goroutines
	}
	r.UDPDrops = udpDrops(base)
	close(stopSampling)
	<-samplerDone
	for _, s := range append(r.Steps, *nz(r.Sustained)) {
		r.CallerSuccess += s.Success
	}
	t.stop()
	stopped = true
	for _, c := range cores {
		c.stop()
		acks, byes := coreCounts(filepath.Dir(c.stat))
		r.CoreACKs += acks
		r.CoreBYEs += byes
	}
	cores = nil
	return r, nil
}

func nz(r *callerRun) *callerRun {
	if r == nil {
		return &callerRun{}
	}
	return r
}

// coreCounts reads the ACK and BYE counts of a Core's -trace_counts file.
func coreCounts(dir string) (acks, byes int) {
	files, _ := filepath.Glob(filepath.Join(dir, "*_counts.csv"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) < 2 {
			continue
		}
		h := strings.Split(lines[0], ";")
		l := strings.Split(lines[len(lines)-1], ";")
		for i, k := range h {
			if i >= len(l) {
				break
			}
			n, _ := strconv.Atoi(l[i])
			switch {
			case strings.HasSuffix(k, "_ACK_Recv"):
				acks += n
			case strings.HasSuffix(k, "_BYE_Recv"):
				byes += n
			}
		}
	}
	return acks, byes
}

func report(o options, rs []*result) {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "balancer\tclean CPS\tsustained CPS\tCPU-s/1000 calls\tRSS MiB\tgoroutines\tUDP drops\tcaller ok\tACKs at Cores\tBYEs at Cores\t")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.3f\t%.0f\t%d\t%d\t%d\t%d\t%d\t\n", r.Target, r.CleanCPS, r.SustainedCPS, r.CPUPer1000, r.RSSMiB, r.Goroutines, r.UDPDrops, r.CallerSuccess, r.CoreACKs, r.CoreBYEs)
	}
	tw.Flush()
	var base, us *result
	for _, r := range rs {
		switch r.Target {
		case "kamailio":
			base = r
		case "sipedge":
			us = r
		}
	}
	if base != nil && us != nil {
		fmt.Fprintf(&b, "\nratios sipedge / kamailio (same run): clean rate %.2f, sustained rate %.2f, CPU per call %.2f, RSS %.2f\n",
			ratio(us.CleanCPS, base.CleanCPS), ratio(us.SustainedCPS, base.SustainedCPS), us.CPUPer1000/nonzero(base.CPUPer1000), us.RSSMiB/nonzero(base.RSSMiB))
	}
	fmt.Printf("\n%s", b.String())
	os.WriteFile(filepath.Join(o.out, "summary.txt"), []byte(b.String()), 0o644)
	j, _ := json.MarshalIndent(rs, "", "  ")
	os.WriteFile(filepath.Join(o.out, "results.json"), j, 0o644)
	if err := plot(filepath.Join(o.out, "plot.png"), rs); err != nil {
		fmt.Fprintf(os.Stderr, "bench: plot: %v\n", err)
	}
	fmt.Printf("results in %s\n", o.out)
}

func ratio(a, b int) float64 { return float64(a) / nonzero(float64(b)) }

func nonzero(f float64) float64 {
	if f == 0 {
		return 1
	}
	return f
}
