package app

import (
	"context"
	"encoding/json"
	"time"

	"github.com/sipedge/sipedge/daemon/history"
)

// Series the charts draw (history.Snapshot names); per-Core probe
// latency is "latency:CORE".
const (
	seriesCPS     = "cps"      // initial INVITEs routed per second
	seriesActive  = "active"   // calls up (sum over the Cores)
	seriesFailed  = "failed"   // 5xx and 6xx answers to callers per second
	series503     = "503"      // 503s to callers per second
	seriesLatency = "latency:" // + Core name: its last probe's latency, ms
	// maxFill: seconds a late sample fills with its values (longer is a
	// gap in the charts).
	maxFill = 10
)

// setupHistory keeps the last hour of the balancer's traffic for the
// charts (sampled once a second) and registers `ctl history`. VIP
// events are marked by failoverEvents.
func (a *App) setupHistory(context.Context) error {
	a.hist = history.New()
	a.ctl.Handle(history.MethodHistory, "the last hour for the charts: calls per second, active and failed calls, 503s, Core latency, VIP events", func(context.Context, json.RawMessage) (any, error) {
		return a.hist.Snapshot(), nil
	})
	a.add("history", func(ctx context.Context) error {
		// The counters start at zero with the daemon.
		prev, prevAt := map[string]uint64{}, a.started
		// Sample in the middle of each second, so that timer jitter never
		// puts two samples in one second or none in the next.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Until(time.Now().Truncate(time.Second).Add(1500 * time.Millisecond))):
		}
		t := time.NewTicker(history.FineStep)
		defer t.Stop()
		for {
			if cs, ok := a.section("sip").(CoresStatus); ok {
				now := time.Now()
				if now.Unix() > prevAt.Unix() {
					recordSample(a.hist, prevAt, now, sampleRates(cs, prev, now.Sub(prevAt)))
					prev, prevAt = cs.Stats, now
				}
			} // else no balancer on this box: only VIP events
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
	return nil
}

// sampleRates is one second's values: gauges from cs, rates from the
// counters' change since prev (taken dt ago).
func sampleRates(cs CoresStatus, prev map[string]uint64, dt time.Duration) map[string]float64 {
	vals := map[string]float64{}
	var active int64
	for _, c := range cs.Cores {
		active += c.Calls
		vals[seriesLatency+c.Name] = c.LatencyMS
	}
	vals[seriesActive] = float64(active)
	if dt <= 0 {
		return vals
	}
	rate := func(keys ...string) float64 {
		var d uint64
		for _, k := range keys {
			d += cs.Stats[k] - prev[k]
		}
		return float64(d) / dt.Seconds()
	}
	vals[seriesCPS] = rate("calls")
	vals[seriesFailed] = rate("replies_5xx", "replies_6xx")
	vals[series503] = rate("replies_503")
	return vals
}

// recordSample stores vals, measured over (prevAt, now], for now's
// second; a sample that comes late (the box stalled) fills the seconds
// it missed with the same values, up to maxFill seconds (a longer stall
// stays a gap).
func recordSample(h *history.History, prevAt, now time.Time, vals map[string]float64) {
	from := now.Unix()
	if miss := now.Unix() - prevAt.Unix(); miss > 1 && miss <= maxFill {
		from = prevAt.Unix() + 1
	}
	for s := from; s <= now.Unix(); s++ {
		h.Record(time.Unix(s, 0), vals)
	}
}
