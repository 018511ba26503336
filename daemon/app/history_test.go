package app

import (
	"math"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/balancer"
	"github.com/sipedge/sipedge/daemon/history"
)

// TestSampleRates: rates are counter differences over the time between
// samples; a late sample fills the seconds it missed, so the chart's
// per-second values still add up to the calls routed; a long stall is a
// gap.
func TestSampleRates(t *testing.T) {
	cs := CoresStatus{Cores: []balancer.CoreStatus{{Name: "c1", Calls: 3, LatencyMS: 1.5}, {Name: "c2", Calls: 4}},
		Stats: map[string]uint64{"calls": 150, "replies_5xx": 10, "replies_6xx": 2, "replies_503": 8}}
	prev := map[string]uint64{"calls": 50, "replies_5xx": 4, "replies_503": 4}
	v := sampleRates(cs, prev, 2*time.Second)
	for k, want := range map[string]float64{seriesCPS: 50, seriesFailed: 4, series503: 2, seriesActive: 7, "latency:c1": 1.5} {
		if v[k] != want {
			t.Errorf("%s = %v, want %v", k, v[k], want)
		}
	}

	h := history.New()
	t0 := time.Unix(1_800_000_000, 500e6)
	recordSample(h, t0.Add(-time.Second), t0, map[string]float64{"cps": 10})
	recordSample(h, t0, t0.Add(3*time.Second), map[string]float64{"cps": 20}) // 2 s missed
	recordSample(h, t0.Add(3*time.Second), t0.Add(20*time.Second), map[string]float64{"cps": 30})
	got := h.Snapshot().Fine.Series["cps"]
	sum, gaps := 0.0, 0
	for _, x := range got {
		if math.IsNaN(float64(x)) {
			gaps++
		} else {
			sum += float64(x)
		}
	}
	if len(got) != 21 || sum != 10+3*20+30 || gaps != 16 {
		t.Errorf("values %v: sum %v, %d gaps; want the late sample over 3 s, then a 17 s stall as a gap", got, sum, gaps)
	}
}
