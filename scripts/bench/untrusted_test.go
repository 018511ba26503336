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

// TestSourcesAddHalves: the four half runs add up per source, and one
// unclean half makes its source's run unclean, with the reason kept.
func TestSourcesAddHalves(t *testing.T) {
	half := func(failed int, cpu float64) phase {
		p := phase{callerRun: callerRun{Rate: 5000, Calls: 50000, Success: 50000 - failed, Failed: failed, CPUSeconds: cpu, P99ms: 10}, Clean: failed == 0}
		if failed > 0 {
			p.Why = "failed"
		}
		return p
	}
	var s sources
	s.add(trustedIP, half(0, 4))
	s.add(untrustedIP, half(0, 5))
	s.add(untrustedIP, half(7, 5))
	s.add(trustedIP, half(0, 4))
	if s.Trusted.Calls != 100000 || s.Trusted.CPUSeconds != 8 || !s.Trusted.Clean {
		t.Errorf("trusted = %+v", *s.Trusted)
	}
	if s.Untrusted.Calls != 100000 || s.Untrusted.Failed != 7 || s.Untrusted.Clean || s.Untrusted.Why != "failed" {
		t.Errorf("untrusted = %+v", *s.Untrusted)
	}
}
