package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// The summary: tables per phase, the ratios against Kamailio and the
// targets, then results.json and plot.png.

func yes(b bool) string {
	if b {
		return "met"
	}
	return "NOT met"
}

func report(o options, rs []*result, srs []*streamResult, took time.Duration) {
	var b strings.Builder
	if len(rs) > 0 {
		reportUDP(&b, o, rs, took)
	} else {
		fmt.Fprintf(&b, "bench %s, TCP and TLS rows only; took %s\n", time.Now().UTC().Format(time.RFC3339), took.Round(time.Second))
	}
	reportStream(&b, o, srs)
	fmt.Printf("\n%s", b.String())
	os.WriteFile(filepath.Join(o.out, "summary.txt"), []byte(b.String()), 0o644)
	if len(rs) > 0 {
		j, _ := json.MarshalIndent(rs, "", "  ")
		os.WriteFile(filepath.Join(o.out, "results.json"), j, 0o644)
		if err := plot(filepath.Join(o.out, "plot.png"), rs); err != nil {
			fmt.Fprintf(os.Stderr, "bench: plot: %v\n", err)
		}
	}
	if len(srs) > 0 {
		j, _ := json.MarshalIndent(srs, "", "  ")
		os.WriteFile(filepath.Join(o.out, "stream.json"), j, 0o644)
	}
	fmt.Printf("results in %s\n", o.out)
}

// reportUDP writes the UDP rows (SIPp) of the summary.
func reportUDP(b *strings.Builder, o options, rs []*result, took time.Duration) {
	fmt.Fprintf(b, "bench %s, %d-ms calls, steps of %s, sustained %s, overload %s; took %s\n\n",
		time.Now().UTC().Format(time.RFC3339), o.callMS, o.stepDur, o.sustain, o.overload, took.Round(time.Second))
	tw := tabwriter.NewWriter(b, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "balancer\tclean step CPS\tsustained CPS\tfailed\tp99 ms\tACK/BYE at Cores\tCPU-s/1000 calls\tRSS MiB (PSS)\tgoroutines per step\tmallocs/call\tpprof allocs/call\tUDP drops\t")
	for _, r := range rs {
		s := r.Sustained
		if s == nil {
			s = &phase{}
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d/%d\t%d\t%d/%d of %d\t%.3f\t%.0f\t%v\t%.0f\t%.0f\t%d\t\n", r.Target, r.CleanCPS, r.SustainedCPS,
			s.Failed, s.Calls, s.P99ms, s.Cores.ACKs, s.Cores.BYEs, s.Success, r.CPUPer1000, r.RSSMiB, r.Goroutines, s.MallocsPerCall, s.AllocsPerCall, r.UDPDrops)
	}
	tw.Flush()
	fmt.Fprintln(b)
	reportRounds(b, rs)
	for _, r := range rs {
		if d := r.Dialogs; d != nil {
			fmt.Fprintf(b, "\n%s dialogs: %d CPS of %d-s calls: peak %d dialogs at once, peak RSS %.0f MiB, %.0f MiB after they ended (%d left), %d failed of %d\n",
				r.Target, d.Rate, d.CallMS/1000, d.PeakDialogs, d.PeakRSSMiB, d.EndRSSMiB, d.EndDialogs, d.Failed, d.Calls)
		}
	}
	var base, us *result
	var sameRatios []float64 // sipedge/kamailio CPU per call, clean steps at the same rate
	for _, r := range rs {
		switch r.Target {
		case "kamailio":
			base = r
		case "sipedge":
			us = r
		}
	}
	if base != nil && us != nil {
		// CPU per call at the same offered rate, where both were clean.
		var same []string
		for _, a := range us.Steps {
			for _, k := range base.Steps {
				if a.Rate == k.Rate && why(a) == "" && why(k) == "" && k.CPUSeconds > 0 {
					ra := a.CPUSeconds / float64(max(a.Success, 1))
					rk := k.CPUSeconds / float64(max(k.Success, 1))
					same = append(same, fmt.Sprintf("%d CPS %.3f/%.3f = %.2f", a.Rate, 1000*ra, 1000*rk, ra/rk))
					sameRatios = append(sameRatios, ra/rk)
				}
			}
		}
		fmt.Fprintf(b, "\nCPU-s per 1000 calls at the same rate (clean steps, sipedge/kamailio): %s\n", strings.Join(same, "; "))
		sustained := fmt.Sprintf("%.2f", ratio(us.SustainedCPS, base.SustainedCPS))
		if base.SustainedCPS == 0 {
			sustained = fmt.Sprintf("n/a (kamailio held no clean sustained run; against its highest clean step %.2f)", ratio(us.SustainedCPS, base.CleanCPS))
		}
		fmt.Fprintf(b, "\nratios sipedge / kamailio (same run): sustained rate %s (target >= 1.0), CPU per call %.2f (target <= 1.0), RSS %.2f, clean step rate %.2f\n",
			sustained, us.CPUPer1000/nonzero(base.CPUPer1000), us.RSSMiB/nonzero(base.RSSMiB), ratio(us.CleanCPS, base.CleanCPS))
	}
	if us != nil {
		fmt.Fprintf(b, "\nsipedge targets (issue 10):\n")
		if base != nil {
			fmt.Fprintf(b, "  1. sustained rate >= Kamailio's: %s (%d vs %d CPS)\n", yes(us.SustainedCPS > 0 && us.SustainedCPS >= base.SustainedCPS), us.SustainedCPS, base.SustainedCPS)
			// Judged at the same rate: per-call CPU falls as the rate
			// rises (batching), so each at its own sustained rate favours
			// the faster one, and sipedge's sustained run carries the CPU
			// profiler. The clean steps are the same rates, unprofiled.
			if len(sameRatios) > 0 {
				m := median(sameRatios)
				fmt.Fprintf(b, "  2. CPU per call <= Kamailio's: %s at the same rate (median of %d clean steps both ran: %.2f); each at its own sustained rate, sipedge's with the CPU profiler on: %.3f vs %.3f CPU-s/1000\n",
					yes(m <= 1.0), len(sameRatios), m, us.CPUPer1000, base.CPUPer1000)
			} else {
				fmt.Fprintf(b, "  2. CPU per call <= Kamailio's: %s (%.3f vs %.3f CPU-s/1000, each at its own sustained rate)\n", yes(us.CPUPer1000 > 0 && us.CPUPer1000 <= base.CPUPer1000), us.CPUPer1000, base.CPUPer1000)
			}
		}
		if us.Sustained != nil {
			fmt.Fprintf(b, "  3. RSS after the sustained run <= 300 MB: %s (%.0f MiB)\n", yes(us.RSSMiB > 0 && us.RSSMiB*1.048576 <= 300), us.RSSMiB)
			fmt.Fprintf(b, "     goroutines per step: %v\n", us.Goroutines)
		}
		if d := us.Dialogs; d != nil {
			fmt.Fprintf(b, "     100,000 dialogs in <= 300 MB: %s (%d dialogs, %.0f MiB)\n", yes(d.PeakDialogs >= 100000 && d.PeakRSSMiB*1.048576 <= 300), d.PeakDialogs, d.PeakRSSMiB)
		}
		for i, rd := range us.Rounds {
			p := rd.Overload
			fmt.Fprintf(b, "  4. overload round %d: %s (%s, %d Cores marked down); from 5 s after it: %d of %d failed\n", i+1, yes(roundClean(rd)), p.Why, p.CoresDown, rd.Recovery.Failed, rd.Recovery.Calls)
		}
		fmt.Fprintf(b, "  5. kernel UDP receive drops on the balancer's socket over the run: %d (exported as sipedge_sip_udp_kernel_drops)\n", us.UDPDrops)
	}
	reportSources(b, rs)
}

func ratio(a, b int) float64 { return float64(a) / nonzero(float64(b)) }

func nonzero(f float64) float64 {
	if f == 0 {
		return 1
	}
	return f
}

// median of xs (not empty); xs is sorted in place.
func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}
