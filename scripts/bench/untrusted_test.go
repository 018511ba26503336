package main

import (
	"strings"
	"testing"
)

// TestReportSources: the summary names both runs of each balancer and
// the CPU ratio untrusted/trusted; a balancer without the runs is left out.
func TestReportSources(t *testing.T) {
	run := func(cpu float64, ok int) *phase {
		return &phase{callerRun: callerRun{Rate: 5000, Calls: 100000, Success: ok, CPUSeconds: cpu, P99ms: 10}, Clean: true}
	}
	rs := []*result{
		{Target: "kamailio"},
		{Target: "sipedge", Sources: &sources{Trusted: run(8, 100000), Untrusted: run(10, 100000)}},
	}
	var b strings.Builder
	reportSources(&b, rs)
	out := b.String()
	if strings.Contains(out, "kamailio") {
		t.Errorf("a balancer without the runs reported:\n%s", out)
	}
	for _, want := range []string{"sipedge at 5000 CPS", "trusted 0/100000 failed, p99 < 10 ms, 0.080 CPU-s/1000 (clean)", "untrusted 0/100000 failed, p99 < 10 ms, 0.100", "untrusted/trusted 1.25"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	reportSources(&b, []*result{{Target: "sipedge"}})
	if b.Len() != 0 {
		t.Errorf("no runs, yet: %q", b.String())
	}
}
