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
		var prev map[string]uint64
		var prevAt time.Time
		t := time.NewTicker(history.FineStep)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case now := <-t.C:
				cs, ok := a.section("sip").(CoresStatus)
				if !ok {
					continue // no balancer on this box: only VIP events
				}
				vals := map[string]float64{}
				var active int64
				for _, c := range cs.Cores {
					active += c.Calls
					vals[seriesLatency+c.Name] = c.LatencyMS
				}
				vals[seriesActive] = float64(active)
				if prev != nil {
					dt := now.Sub(prevAt).Seconds()
					rate := func(keys ...string) float64 {
						var d uint64
						for _, k := range keys {
							d += cs.Stats[k] - prev[k]
						}
						return float64(d) / dt
					}
					vals[seriesCPS] = rate("calls")
					vals[seriesFailed] = rate("replies_5xx", "replies_6xx")
					vals[series503] = rate("replies_503")
				}
				prev, prevAt = cs.Stats, now
				a.hist.Record(now, vals)
			}
		}
	})
	return nil
}
