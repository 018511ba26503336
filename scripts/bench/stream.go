package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sipedge/sipedge/scripts/bench/streamload"
)

// The stream rows (issue 19): SIP over TCP and TLS through each balancer
// in the same run, the callers played by the in-process generator
// scripts/bench/streamload (Debian's SIPp has no TLS), the Cores the
// same two SIPp UDP Cores as the UDP rows (core.xml):
//
//   - calls-tcp, calls-tls: calls (INVITE ... BYE, -call-ms long) over
//     -stream-conns long-lived connections at the rising rates of
//     -stream-rates, -stream-step each, until a step is not clean: more
//     than 0.1 % of its calls failed, or the generator says it was the
//     limit (it fell behind its schedule, or its own CPU or the host's
//     was saturated: the row says GENERATOR-LIMITED and its figure is a
//     lower bound); the balancer's CPU per 1,000 calls of every step;
//   - handshakes: new TLS connections (a full handshake, one OPTIONS,
//     closed) at the rising rates of -stream-hs-rates, judged the same;
//   - idle-tcp, idle-tls: -stream-idle connections opened from
//     127.0.0.2-5, each sending one OPTIONS, then held; the balancer's
//     Pss (summed over its processes) before and with them open, divided
//     by the connections open.
//
// Every row runs against a fresh balancer process and fresh Cores: freed
// connections leave their pages in the process (Kamailio's shared pool,
// Go's heap), so a second idle row would look cheaper, and a failed
// step's leftovers (Cores marked down, transactions) stay out of the
// next row. Kamailio runs with one TCP worker (kamailioStreamCfg:
// Debian's 5.6.3 crashes with more once a few thousand TLS connections
// are open, kamailio#3791).
//
// Ports, from each target's base (-stream-port, + 100 per target): udp
// base, tcp base+1, tls base+2, sipedge's Core side base+10, the Cores
// base+20 and base+30 (SIPp control port +1, media +4).

// streamRowNames are the rows, in the order they run.
var streamRowNames = []string{"calls-tcp", "calls-tls", "handshakes", "idle-tcp", "idle-tls"}

// kamailioTCPChildren is Kamailio's TCP/TLS workers in every stream row.
const kamailioTCPChildren = 1

// idleSources is how many source addresses (from 127.0.0.2) the idle
// connections come from.
const idleSources = 4

// streamStep is one step of a ladder: a run at one rate.
type streamStep struct {
	Rate      int     `json:"rate"`
	Attempted int     `json:"attempted"`
	Succeeded int     `json:"succeeded"`
	Failed    int     `json:"failed"`
	PerSecond float64 `json:"succeeded_per_s"`
	// P50ms, P99ms: INVITE to 200 (calls), the TLS handshake (handshakes).
	P50ms float64 `json:"p50_ms"`
	P99ms float64 `json:"p99_ms"`
	// CPUSeconds is the balancer's (its process tree) over the step.
	CPUSeconds float64 `json:"cpu_s"`
	// HostBusy is the host's CPU use over the step (0..1).
	HostBusy float64 `json:"host_busy"`
	// Generator is why the generator may have been the limit (empty: it
	// kept up).
	Generator []string       `json:"generator_limited,omitempty"`
	Reasons   map[string]int `json:"reasons,omitempty"`
	Clean     bool           `json:"clean"`
	Why       string         `json:"why,omitempty"`
}

// per1000 is the balancer's CPU-s per 1,000 successes of the step.
func (s streamStep) per1000() float64 { return 1000 * s.CPUSeconds / float64(max(s.Succeeded, 1)) }

// How a ladder ended.
const (
	endFailed    = "failed"    // a step failed more than 0.1 %
	endGenerator = "generator" // GENERATOR-LIMITED: the figure is a lower bound
	endTop       = "top"       // every step clean: the figure is a lower bound
	endCrash     = "crash"     // the balancer died
	endError     = "error"     // the row could not run
)

// ladder is a row of rising rates.
type ladder struct {
	Row   string       `json:"row"`
	Steps []streamStep `json:"steps"`
	// Best is the highest clean rate (0: none).
	Best int    `json:"highest_clean_rate"`
	End  string `json:"end"`
	Why  string `json:"why,omitempty"`
}

// judgeStep sets s.Clean and s.Why and tells how a ladder ends at s ("":
// it goes on). The generator's verdict comes first: when it was the
// limit, the step's failures may be its own doing.
func judgeStep(s *streamStep) string {
	s.Clean = false
	switch {
	case len(s.Generator) > 0:
		s.Why = "GENERATOR-LIMITED: " + strings.Join(s.Generator, "; ")
		if s.Failed > 0 {
			s.Why += fmt.Sprintf(" (%d of %d failed)", s.Failed, s.Attempted)
		}
		return endGenerator
	case s.Attempted == 0:
		s.Why = "no attempts"
		return endFailed
	case float64(s.Failed) > 0.001*float64(s.Attempted):
		s.Why = fmt.Sprintf("%d of %d failed (%.2f %%)", s.Failed, s.Attempted, 100*float64(s.Failed)/float64(s.Attempted))
		if r := topReasons(s.Reasons, 3); r != "" {
			s.Why += ": " + r
		}
		return endFailed
	}
	s.Clean, s.Why = true, ""
	return ""
}

// topReasons lists the n commonest failure reasons.
func topReasons(m map[string]int, n int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	var out []string
	for _, k := range keys[:min(n, len(keys))] {
		out = append(out, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(out, ", ")
}

// add judges s, the ladder's step (last: its top rate), and tells
// whether the ladder goes on.
func (l *ladder) add(s streamStep, last bool) bool {
	end := judgeStep(&s)
	l.Steps = append(l.Steps, s)
	if end == "" {
		l.Best = max(l.Best, s.Rate)
		if last {
			l.End = endTop
		}
		return !last
	}
	l.End, l.Why = end, s.Why
	return false
}

// lowerBound tells that the balancer may do more than l.Best: the
// generator or the ladder's top ended the row, not the balancer.
func (l *ladder) lowerBound() bool { return l.End == endGenerator || l.End == endTop }

// lastRate is the rate of the ladder's last step (0: none).
func (l *ladder) lastRate() int {
	if len(l.Steps) == 0 {
		return 0
	}
	return l.Steps[len(l.Steps)-1].Rate
}

// cell is the ladder's figure for the summary.
func (l *ladder) cell() string {
	if l == nil {
		return "-"
	}
	switch l.End {
	case endError:
		return "error"
	case endTop:
		return fmt.Sprintf(">= %d (ladder top)", l.Best)
	case endGenerator:
		if l.Best == 0 {
			return fmt.Sprintf("GENERATOR-LIMITED at %d", l.lastRate())
		}
		return fmt.Sprintf(">= %d (GENERATOR-LIMITED at %d)", l.Best, l.lastRate())
	case endCrash:
		return fmt.Sprintf("%d (CRASHED)", l.Best)
	}
	if l.Best == 0 {
		return "none clean"
	}
	return strconv.Itoa(l.Best)
}

// compareRates is the ratio us/base of two ladders' highest clean rates
// and whether us meets the target (>= base). A bound (the generator, the
// ladder's top) makes the ratio a bound, and the verdict undetermined
// where the bound hides the answer.
func compareRates(us, base *ladder) (ratio, met string) {
	if us == nil || base == nil || us.End == endError || base.End == endError {
		return "-", "-"
	}
	uLow, bLow := us.lowerBound(), base.lowerBound()
	ratio = "n/a"
	if base.Best > 0 {
		r := fmt.Sprintf("%.2f", float64(us.Best)/float64(base.Best))
		switch {
		case uLow && bLow:
			r = "? (both bounded)"
		case uLow:
			r = ">= " + r
		case bLow:
			r = "<= " + r
		}
		ratio = r
	}
	switch {
	case us.Best == 0 && base.Best == 0 && !uLow && !bLow:
		met = "NOT met (neither clean)"
	case us.Best >= base.Best && us.Best > 0 && !bLow:
		met = "met"
	case us.Best < base.Best && !uLow:
		met = "NOT met"
	default:
		met = "undetermined (bound)"
	}
	return ratio, met
}

// sameRateCPU finds the highest rate at which both ladders ran a clean
// step, and the balancers' CPU-s per 1,000 there.
func sameRateCPU(us, base *ladder) (rate int, u, b float64, ok bool) {
	if us == nil || base == nil {
		return 0, 0, 0, false
	}
	for _, s := range us.Steps {
		if !s.Clean || s.Rate < rate {
			continue
		}
		for _, k := range base.Steps {
			if k.Clean && k.Rate == s.Rate {
				rate, u, b, ok = s.Rate, s.per1000(), k.per1000(), true
			}
		}
	}
	return rate, u, b, ok
}

// bestCPU is a ladder's CPU-s per 1,000 at its highest clean step.
func bestCPU(l *ladder) (rate int, per float64, ok bool) {
	if l == nil {
		return 0, 0, false
	}
	for _, s := range l.Steps {
		if s.Clean && s.Rate >= rate {
			rate, per, ok = s.Rate, s.per1000(), true
		}
	}
	return rate, per, ok
}

// idleRow is a memory row: connections held open, the balancer's Pss.
type idleRow struct {
	Network  string `json:"network"`
	Wanted   int    `json:"wanted"`
	Open     int    `json:"open"` // when measured
	Failed   int    `json:"failed"`
	Answered int    `json:"options_answered"`
	// ClosedByServer counts connections the balancer closed while held.
	ClosedByServer int     `json:"closed_by_server"`
	OpenSeconds    float64 `json:"open_s"`
	Processes      int     `json:"processes"`
	PssBeforeMiB   float64 `json:"pss_before_mib"`
	PssOpenMiB     float64 `json:"pss_open_mib"`
	PerConnKiB     float64 `json:"kib_per_connection"`
	Why            string  `json:"why,omitempty"`
}

// measured tells that the row has a figure worth comparing: at least
// 99 % of the connections wanted were open when it was read.
func (r *idleRow) measured() bool {
	return r != nil && r.Open > 0 && float64(r.Open) >= 0.99*float64(r.Wanted)
}

func (r *idleRow) cell() string {
	switch {
	case r == nil:
		return "-"
	case r.Open == 0:
		return "none open"
	case !r.measured():
		return fmt.Sprintf("%.1f (only %d of %d open)", r.PerConnKiB, r.Open, r.Wanted)
	}
	return fmt.Sprintf("%.1f", r.PerConnKiB)
}

// streamResult is one balancer's stream rows.
type streamResult struct {
	Target     string   `json:"target"`
	CallsTCP   *ladder  `json:"calls_tcp,omitempty"`
	CallsTLS   *ladder  `json:"calls_tls,omitempty"`
	Handshakes *ladder  `json:"tls_handshakes,omitempty"`
	IdleTCP    *idleRow `json:"idle_tcp,omitempty"`
	IdleTLS    *idleRow `json:"idle_tls,omitempty"`
	Notes      []string `json:"notes,omitempty"`
}

// parseInts reads a comma-separated list of positive integers.
func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty list")
	}
	return out, nil
}

// parseRows reads -stream-rows: names of streamRowNames, run in their
// own order.
func parseRows(s string) ([]string, error) {
	want := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !slices.Contains(streamRowNames, f) {
			return nil, fmt.Errorf("unknown row %q (rows: %s)", f, strings.Join(streamRowNames, ","))
		}
		want[f] = true
	}
	var out []string
	for _, r := range streamRowNames {
		if want[r] {
			out = append(out, r)
		}
	}
	return out, nil
}

// streamProxy is a fresh balancer with its Cores, for one row.
type streamProxy struct {
	name             string
	t                *target
	tcpAddr, tlsAddr string
	tls              *tls.Config
}

func (p *streamProxy) target(network string) streamload.Target {
	if network == "tls" {
		return streamload.Target{Network: "tls", Addr: p.tlsAddr, TLS: p.tls}
	}
	return streamload.Target{Network: "tcp", Addr: p.tcpAddr}
}

// dead tells why the balancer is gone ("" while it runs): it exited, or
// Kamailio's log shows a crashed worker.
func (p *streamProxy) dead() string {
	select {
	case <-p.t.done:
		return "the process exited"
	default:
	}
	if p.name == "kamailio" {
		if c := kamailioCrashed(p.t.log); c != "" {
			return "Kamailio's log: " + c
		}
	}
	return ""
}

// withStreamProxy starts two Cores and the balancer name on base (see
// the ports above), runs fn, and stops them.
func withStreamProxy(o options, name string, base int, dir string, fn func(*streamProxy)) error {
	corePorts := []int{base + 20, base + 30}
	for _, cp := range corePorts {
		c, err := startCorePorts(dir, cp, cp+1, cp+4, filepath.Join(o.scenarios, "core.xml"))
		if err != nil {
			return err
		}
		defer c.stop()
	}
	p := &streamProxy{name: name, tcpAddr: fmt.Sprintf("127.0.0.1:%d", base+1), tlsAddr: fmt.Sprintf("127.0.0.1:%d", base+2)}
	var pki streamload.PKI
	var err error
	switch name {
	case "kamailio":
		p.t, pki, err = startKamailioStream(dir, base, base+1, base+2, kamailioTCPChildren, corePorts)
	case "sipedge":
		if pki, err = streamload.WritePKI(dir, "sipedge.bench", []net.IP{net.IPv4(127, 0, 0, 1)}, 0); err != nil {
			return err
		}
		p.t, err = startSipedge(dir, o.bin, base, corePorts, o.env, o.sipYAML,
			&sipedgeStream{TCPPort: base + 1, TLSPort: base + 2, Cert: pki.CertFile, Key: pki.KeyFile, MaxConns: streamMaxConns})
	default:
		err = fmt.Errorf("unknown target %q", name)
	}
	if err != nil {
		return err
	}
	defer p.t.stop()
	if err := waitListening(p.tcpAddr, 10*time.Second); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if p.tls, err = streamload.ClientTLS(pki.CAFile, pki.Name, false); err != nil {
		return err
	}
	fn(p)
	return nil
}

// waitListening waits until addr accepts TCP connections.
func waitListening(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening after %v: %w", addr, within, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// measureStream runs o.streamRows against balancer name, each on a fresh
// process; a row that cannot run is left out with a note.
func measureStream(o options, name string, base int) *streamResult {
	sr := &streamResult{Target: name}
	dir := filepath.Join(o.out, "stream-"+name)
	os.RemoveAll(dir)
	for _, row := range o.streamRows {
		rdir := filepath.Join(dir, row)
		if err := os.MkdirAll(rdir, 0o755); err != nil {
			sr.Notes = append(sr.Notes, fmt.Sprintf("%s: %v", row, err))
			continue
		}
		timeout := time.Duration(max(len(o.streamRates), len(o.streamHSRates)))*(o.streamStep+30*time.Second) + 2*time.Minute
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := withStreamProxy(o, name, base, rdir, func(p *streamProxy) {
			switch row {
			case "calls-tcp":
				sr.CallsTCP = callLadder(ctx, o, p, "tcp")
			case "calls-tls":
				sr.CallsTLS = callLadder(ctx, o, p, "tls")
			case "handshakes":
				sr.Handshakes = handshakeLadder(ctx, o, p)
			case "idle-tcp":
				sr.IdleTCP = idleMemory(ctx, o, p, "tcp")
			case "idle-tls":
				sr.IdleTLS = idleMemory(ctx, o, p, "tls")
			}
			if d := p.dead(); d != "" {
				sr.Notes = append(sr.Notes, fmt.Sprintf("%s died in the %s row: %s", name, row, d))
			}
		})
		cancel()
		if err != nil {
			sr.Notes = append(sr.Notes, fmt.Sprintf("%s row not run: %v", row, err))
			fmt.Printf("%-8s %-10s not run: %v\n", name, row, err)
		}
	}
	return sr
}

func printStep(name, row string, unit string, s streamStep, dur time.Duration) {
	status := "clean"
	if !s.Clean {
		status = "NOT clean: " + s.Why
	}
	fmt.Printf("%-8s %-10s %5d %s %3.0fs: %6d attempted, %6d ok, %5d failed, %7.1f ok/s, p50 %.1f ms, p99 %.1f ms, %.3f CPU-s/1000, host %.0f %% busy; %s\n",
		name, row, s.Rate, unit, dur.Seconds(), s.Attempted, s.Succeeded, s.Failed, s.PerSecond, s.P50ms, s.P99ms, s.per1000(), 100*s.HostBusy, status)
}

// callLadder is the calls row over network: a warm-up, then the rates.
func callLadder(ctx context.Context, o options, p *streamProxy, network string) *ladder {
	l := &ladder{Row: "calls-" + network}
	hold := time.Duration(o.callMS) * time.Millisecond
	w, err := streamload.RunCaller(ctx, streamload.CallerConfig{Target: p.target(network), Conns: min(o.streamConns, 4), Rate: 50, Duration: 2 * time.Second, Hold: hold})
	if err != nil {
		l.End, l.Why = endError, err.Error()
		return l
	}
	fmt.Printf("%-8s %-10s warm-up: %d of %d ok\n", p.name, l.Row, w.Succeeded, w.Attempted)
	return climb(ctx, o, p, l, o.streamRates, "CPS", func(rate int) (streamStep, error) {
		r, err := streamload.RunCaller(ctx, streamload.CallerConfig{Target: p.target(network), Conns: o.streamConns, Rate: float64(rate), Duration: o.streamStep, Hold: hold})
		if err != nil {
			return streamStep{}, err
		}
		return streamStep{Attempted: r.Attempted, Succeeded: r.Succeeded, Failed: r.Failed, PerSecond: r.CPS,
			P50ms: r.Setup.P50, P99ms: r.Setup.P99, HostBusy: r.Limit.HostBusy, Generator: r.Limit.Reasons, Reasons: r.Reasons}, nil
	})
}

// handshakeLadder is the new-TLS-connections row.
func handshakeLadder(ctx context.Context, o options, p *streamProxy) *ladder {
	return climb(ctx, o, p, &ladder{Row: "handshakes"}, o.streamHSRates, "/s ", func(rate int) (streamStep, error) {
		r, err := streamload.RunHandshakes(ctx, streamload.HandshakeConfig{Target: p.target("tls"), Rate: float64(rate), Duration: o.streamStep})
		if err != nil {
			return streamStep{}, err
		}
		return streamStep{Attempted: r.Attempted, Succeeded: r.Succeeded, Failed: r.Failed, PerSecond: r.PerSecond,
			P50ms: r.Handshake.P50, P99ms: r.Handshake.P99, HostBusy: r.Limit.HostBusy, Generator: r.Limit.Reasons, Reasons: r.Reasons}, nil
	})
}

// climb runs l's steps, one run at each of rates after a 2 s settle,
// with the balancer's CPU over each, until a step is not clean, the
// balancer has died or ctx ends.
func climb(ctx context.Context, o options, p *streamProxy, l *ladder, rates []int, unit string, run func(rate int) (streamStep, error)) *ladder {
	for i, rate := range rates {
		time.Sleep(2 * time.Second)
		cpu0 := cpuSeconds(p.t.pid())
		s, err := run(rate)
		if err != nil {
			l.End, l.Why = endError, err.Error()
			return l
		}
		s.Rate, s.CPUSeconds = rate, cpuSeconds(p.t.pid())-cpu0
		more := l.add(s, i == len(rates)-1)
		printStep(p.name, l.Row, unit, l.Steps[len(l.Steps)-1], o.streamStep)
		if d := p.dead(); d != "" {
			l.End, l.Why = endCrash, d
			return l
		}
		if !more || ctx.Err() != nil {
			break
		}
	}
	return l
}

// idleMemory is an idle row: the balancer's Pss before and with
// o.streamIdle connections open.
func idleMemory(ctx context.Context, o options, p *streamProxy, network string) *idleRow {
	row := &idleRow{Network: network, Wanted: o.streamIdle}
	time.Sleep(2 * time.Second) // the fresh balancer settles
	pid := p.t.pid()
	row.PssBeforeMiB = rssMiB(pid)
	tg := p.target(network)
	tg.Sources = streamload.Sources(netip.MustParseAddr("127.0.0.2"), idleSources)
	tg.DialTimeout = 10 * time.Second
	st, err := streamload.RunIdle(ctx, streamload.IdleConfig{Target: tg, Conns: o.streamIdle, Parallel: 64, Timeout: 10 * time.Second, Hold: 2 * time.Second,
		Ready: func(s streamload.IdleStatus) {
			time.Sleep(2 * time.Second)
			row.PssOpenMiB = rssMiB(pid)
			row.Processes = len(procTree(pid))
			row.Open = s.Open
		}})
	if err != nil {
		row.Why = err.Error()
		return row
	}
	row.Failed, row.Answered, row.ClosedByServer, row.OpenSeconds = st.Failed, st.Answered, st.Closed, st.OpenTime.Seconds()
	if row.Open > 0 {
		row.PerConnKiB = (row.PssOpenMiB - row.PssBeforeMiB) * 1024 / float64(row.Open)
	}
	if len(st.Reasons) > 0 {
		row.Why = "failures: " + topReasons(st.Reasons, 3)
	}
	fmt.Printf("%-8s idle-%s   %d of %d open (%d failed, %d OPTIONS answered, %d closed by the balancer) in %.1f s; Pss of %s %.1f -> %.1f MiB: %.1f KiB per connection\n",
		p.name, network, row.Open, row.Wanted, row.Failed, row.Answered, row.ClosedByServer, row.OpenSeconds, processes(row.Processes), row.PssBeforeMiB, row.PssOpenMiB, row.PerConnKiB)
	return row
}

// tcpIdleTargetKiB is issue 19's target for an idle TCP connection.
const tcpIdleTargetKiB = 16

// reportStream writes the stream rows: one line per row with each
// balancer's figure, the ratio sipedge/kamailio of the same run, the
// target and whether it is met; then every step, the idle rows' detail
// and the caveats.
func reportStream(b *strings.Builder, o options, srs []*streamResult) {
	if len(srs) == 0 {
		return
	}
	var base, us *streamResult
	for _, r := range srs {
		switch r.Target {
		case "kamailio":
			base = r
		case "sipedge":
			us = r
		}
	}
	fmt.Fprintf(b, "\nTCP and TLS rows (issue 19; same run, a fresh balancer process and fresh Cores per row): calls over %d long-lived connections, %d-ms calls, %s steps; %d idle connections\n",
		o.streamConns, o.callMS, o.streamStep, o.streamIdle)
	tw := tabwriter.NewWriter(b, 2, 8, 2, ' ', tabwriter.AlignRight)
	head := "row\t"
	for _, r := range srs {
		head += r.Target + "\t"
	}
	fmt.Fprintln(tw, head+"sipedge/kamailio\ttarget\tsipedge: target\t")
	line := func(name string, cell func(*streamResult) string, ratio, target, met string) {
		s := name + "\t"
		for _, r := range srs {
			s += cell(r) + "\t"
		}
		fmt.Fprintln(tw, s+ratio+"\t"+target+"\t"+met+"\t")
	}
	pair := base != nil && us != nil
	ladderRow := func(name string, get func(*streamResult) *ladder) {
		ratio, met := "-", "-"
		if pair {
			ratio, met = compareRates(get(us), get(base))
		}
		line(name, func(r *streamResult) string { return get(r).cell() }, ratio, ">= Kamailio's", met)
	}
	ladderRow(fmt.Sprintf("calls/s, %d TCP connections", o.streamConns), func(r *streamResult) *ladder { return r.CallsTCP })
	ladderRow(fmt.Sprintf("calls/s, %d TLS connections", o.streamConns), func(r *streamResult) *ladder { return r.CallsTLS })
	ladderRow("new TLS handshakes/s", func(r *streamResult) *ladder { return r.Handshakes })
	idleLine := func(network string, get func(*streamResult) *idleRow) {
		ratio, met, target := "-", "-", "<= Kamailio's"
		if network == "tcp" {
			target = fmt.Sprintf("<= %d KiB", tcpIdleTargetKiB)
		}
		if u := get(nonNil(us)); u.measured() {
			if network == "tcp" {
				met = yes(u.PerConnKiB <= tcpIdleTargetKiB)
			}
			if k := get(nonNil(base)); k.measured() && k.PerConnKiB > 0 {
				ratio = fmt.Sprintf("%.2f", u.PerConnKiB/k.PerConnKiB)
				if network == "tls" {
					met = yes(u.PerConnKiB <= k.PerConnKiB)
				}
			}
		}
		line(fmt.Sprintf("KiB (Pss) per idle %s connection", strings.ToUpper(network)), func(r *streamResult) string { return get(r).cell() }, ratio, target, met)
	}
	idleLine("tcp", func(r *streamResult) *idleRow { return r.IdleTCP })
	idleLine("tls", func(r *streamResult) *idleRow { return r.IdleTLS })
	cpuLine := func(network string, get func(*streamResult) *ladder) {
		if pair {
			if rate, u, k, ok := sameRateCPU(get(us), get(base)); ok {
				line(fmt.Sprintf("CPU-s per 1,000 calls, %s, at %d CPS", strings.ToUpper(network), rate), func(r *streamResult) string {
					if r == us {
						return fmt.Sprintf("%.3f", u)
					}
					if r == base {
						return fmt.Sprintf("%.3f", k)
					}
					return "-"
				}, fmt.Sprintf("%.2f", u/nonzero(k)), "<= Kamailio's", yes(u <= k))
				return
			}
		}
		line(fmt.Sprintf("CPU-s per 1,000 calls, %s, at its highest clean step", strings.ToUpper(network)), func(r *streamResult) string {
			if rate, per, ok := bestCPU(get(r)); ok {
				return fmt.Sprintf("%.3f at %d", per, rate)
			}
			return "-"
		}, "-", "<= Kamailio's", "-")
	}
	cpuLine("tcp", func(r *streamResult) *ladder { return r.CallsTCP })
	cpuLine("tls", func(r *streamResult) *ladder { return r.CallsTLS })
	tw.Flush()

	fmt.Fprintln(b)
	tw = tabwriter.NewWriter(b, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "balancer\trow\trate\tattempted\tok\tfailed\tok/s\tp50 ms\tp99 ms\tCPU-s/1000\thost busy %\tstep\t")
	for _, r := range srs {
		for _, l := range []*ladder{r.CallsTCP, r.CallsTLS, r.Handshakes} {
			if l == nil {
				continue
			}
			for _, s := range l.Steps {
				verdict := "clean"
				if !s.Clean {
					verdict = s.Why
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.3f\t%.0f\t%s\t\n", r.Target, l.Row, s.Rate, s.Attempted, s.Succeeded, s.Failed,
					s.PerSecond, s.P50ms, s.P99ms, s.per1000(), 100*s.HostBusy, verdict)
			}
			if l.End == endError || l.End == endCrash {
				fmt.Fprintf(tw, "%s\t%s\t\t\t\t\t\t\t\t\t\t%s: %s\t\n", r.Target, l.Row, strings.ToUpper(l.End), l.Why)
			}
		}
	}
	tw.Flush()
	b.WriteString("(p50/p99: INVITE to 200 for calls, the TLS handshake for handshakes; CPU: the balancer's process tree per 1,000 successes)\n")
	for _, r := range srs {
		for _, row := range []*idleRow{r.IdleTCP, r.IdleTLS} {
			if row == nil {
				continue
			}
			fmt.Fprintf(b, "%s idle %s: %d of %d open (%d failed, %d OPTIONS answered, %d closed by the balancer) in %.1f s; Pss of its %s %.1f -> %.1f MiB = %.1f KiB per connection",
				r.Target, row.Network, row.Open, row.Wanted, row.Failed, row.Answered, row.ClosedByServer, row.OpenSeconds, processes(row.Processes), row.PssBeforeMiB, row.PssOpenMiB, row.PerConnKiB)
			if row.Why != "" {
				fmt.Fprintf(b, "; %s", row.Why)
			}
			b.WriteString("\n")
		}
		for _, n := range r.Notes {
			fmt.Fprintf(b, "%s: %s\n", r.Target, n)
		}
	}
	fmt.Fprintf(b, "caveats: Kamailio runs these rows with %d TCP worker (tcp_children=%d; with more, Debian's 5.6.3 crashes once a few thousand TLS connections are open, kamailio#3791), its UDP rows with 2;\n", kamailioTCPChildren, kamailioTCPChildren)
	b.WriteString("  the callers are this bench process (streamload), sharing the host's CPUs with the balancer and the Cores: a step where the generator fell\n" +
		"  behind its schedule, or its own or the host's CPU was saturated, ends its row GENERATOR-LIMITED, and that row's figure is a lower bound,\n" +
		"  not the balancer's limit (a row ending at the ladder's top likewise; \"undetermined (bound)\": such a bound hides the verdict);\n" +
		"  the idle connections come from 127.0.0.2-5, outside sipedge's security.trusted, with its sip.tcp caps raised for them;\n" +
		"  memory is Pss summed over the balancer's processes (Kamailio's shared pool counted once), read 2 s after the last connection opened\n" +
		"  (sipedge's figure includes garbage its GC has not collected yet: with fewer connections it is higher per connection).\n")
}

func processes(n int) string {
	if n == 1 {
		return "1 process"
	}
	return fmt.Sprintf("%d processes", n)
}

// nonNil lets a getter run on a missing result (every row nil).
func nonNil(r *streamResult) *streamResult {
	if r == nil {
		return &streamResult{}
	}
	return r
}
