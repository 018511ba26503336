package main

import (
	"strings"
	"testing"
	"time"
)

// TestRoundsReport: a round meets the criteria only with >= 90 % of the
// sustained rate completed, no Core down and no failure after the grace
// run; the table says which and shows the rate the callers offered.
func TestRoundsReport(t *testing.T) {
	run := func(rate, calls, ok, failed, down int, clean bool) *phase {
		return &phase{callerRun: callerRun{Rate: rate, Calls: calls, Success: ok, Failed: failed, Duration: 10 * time.Second}, CoresDown: down, Clean: clean}
	}
	good := round{Overload: run(12000, 100000, 58000, 2000, 0, true), Grace: run(6000, 30000, 29000, 1000, 0, false), Recovery: run(6000, 60000, 60000, 0, 0, true)}
	good.Overload.Received, good.Overload.CPUSeconds = 100000, 1.5 // 15 µs per datagram
	hangover := round{Overload: good.Overload, Grace: good.Grace, Recovery: run(6000, 60000, 59990, 10, 0, false)}
	down := round{Overload: run(12000, 100000, 58000, 0, 1, false), Grace: good.Grace, Recovery: good.Recovery}
	for _, c := range []struct {
		rd   round
		want bool
	}{{good, true}, {hangover, false}, {down, false}} {
		if got := roundClean(c.rd); got != c.want {
			t.Errorf("roundClean(%+v) = %v, want %v", c.rd, got, c.want)
		}
	}
	var b strings.Builder
	reportRounds(&b, []*result{{Target: "sipedge", SustainedCPS: 6000, Rounds: []round{good, hangover}}})
	out := b.String()
	for _, want := range []string{"10000", "5800", "97", "1000 of 30000", "0 of 60000", "10 of 60000", "NOT met", "15.0"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
