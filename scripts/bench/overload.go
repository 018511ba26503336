package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// The overload rounds: twice the sustained rate for -overload, then the
// sustained rate again. The first recoverGrace of normal load is its
// own run (reported, not judged): every call started after it must
// succeed, which is the recovery criterion (no hangover). -rounds
// repeats the round, after the Cores have settled; -overload-only RATE
// runs only the rounds, with RATE as the sustained rate (what a full
// bench measured before), so that the criteria can be checked several
// times, or beside stress-ng, in a few minutes.
const recoverGrace = 5 * time.Second

// round is one overload round's three runs.
type round struct {
	Overload *phase `json:"overload"`
	Grace    *phase `json:"grace"`    // the first 5 s of normal load after it
	Recovery *phase `json:"recovery"` // the rest: 0 failed calls
}

// runFunc runs one caller run through the balancer (measure's run).
type runFunc func(label, scenario string, rate int, dur time.Duration, callMS int, during func()) (phase, error)

// overloadRounds runs o.rounds rounds at twice r.SustainedCPS. Of
// sipedge it reads the calls it refused by its own admission control and
// the datagrams it received, and takes a CPU profile of 10 s in the
// middle of the first round (where the time goes per datagram).
func overloadRounds(o options, r *result, run runFunc, cores []*sippCore, t *target) error {
	caller := filepath.Join(o.scenarios, "caller.xml")
	for i := 0; i < max(o.rounds, 1); i++ {
		if i > 0 {
			settle(cores)
		}
		time.Sleep(3 * time.Second)
		shed0, recv0 := t.shed(), t.received()
		var during func()
		if i == 0 && t.ctl != nil && o.overload >= 20*time.Second {
			prof, _ := filepath.Abs(filepath.Join(o.out, t.name, "overload-cpu.pprof"))
			during = func() {
				time.Sleep(o.overload/2 - 5*time.Second)
				if err := t.ctl(nil, "debug", "profile", "cpu", "10", prof); err == nil {
					r.Profile = prof
				}
			}
		}
		p, err := run("overload", filepath.Join(o.scenarios, "caller-overload.xml"), 2*r.SustainedCPS, o.overload, o.callMS, during)
		if err != nil {
			return err
		}
		p.Shed503 = t.shed() - shed0
		p.Received = t.received() - recv0
		done := float64(p.Success) / o.overload.Seconds()
		p.Clean = done >= 0.9*float64(r.SustainedCPS) && p.CoresDown == 0
		p.Why = fmt.Sprintf("completed %.0f CPS = %.0f %% of the sustained rate", done, 100*done/float64(r.SustainedCPS))
		g, err := run("grace", caller, r.SustainedCPS, recoverGrace, o.callMS, nil)
		if err != nil {
			return err
		}
		rp, err := run("recovery", caller, r.SustainedCPS, o.recover, o.callMS, nil)
		if err != nil {
			return err
		}
		r.Rounds = append(r.Rounds, round{Overload: &p, Grace: &g, Recovery: &rp})
	}
	return nil
}

// perDatagram is the balancer's CPU time per datagram it read, in µs
// ("-" when it did not count them).
func perDatagram(p *phase) string {
	if p.Received <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", 1e6*p.CPUSeconds/float64(p.Received))
}

// roundClean is a round that meets the overload criteria: >= 90 % of
// the sustained rate completed, no Core marked down, and no call
// failed from recoverGrace after the overload on.
func roundClean(rd round) bool {
	return rd.Overload.Clean && rd.Recovery.Failed == 0 && rd.Recovery.Calls > 0
}

// reportRounds writes the overload table: a line per round.
func reportRounds(b *strings.Builder, rs []*result) {
	tw := tabwriter.NewWriter(b, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "overload\tround\tasked CPS\toffered CPS\tcompleted CPS\t% of sustained\trefused 503\tfailed\tCores marked down\tUDP drops: listen\tCore side\tat Cores\tCPU µs per datagram\tfirst 5 s after: failed\tthen: failed\tmet\t")
	for _, r := range rs {
		for i, rd := range r.Rounds {
			p := rd.Overload
			done := float64(p.Success) / p.Duration.Seconds()
			offered := float64(p.Calls) / p.Duration.Seconds()
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.0f\t%.0f\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%d of %d\t%d of %d\t%s\t\n", r.Target, i+1, p.Rate, offered, done,
				100*done/float64(max(r.SustainedCPS, 1)), p.Refused503, p.Failed, p.CoresDown, p.UDPDrops, p.SideDrops, p.CoreDrops, perDatagram(p),
				rd.Grace.Failed, rd.Grace.Calls, rd.Recovery.Failed, rd.Recovery.Calls, yes(roundClean(rd)))
		}
	}
	tw.Flush()
	b.WriteString("(offered: the calls the callers started per second; where it is below the asked rate, the callers could offer no more on this host;\n" +
		" CPU µs per datagram: the balancer's CPU over the datagrams it read, sipedge only)\n")
	for _, r := range rs {
		if r.Profile != "" {
			fmt.Fprintf(b, "%s: CPU profile of 10 s in the middle of the first overload round: %s (go tool pprof -top BIN FILE)\n", r.Target, r.Profile)
		}
	}
}
