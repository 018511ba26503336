package app

import (
	"context"
	"encoding/json"
	"time"

	"github.com/sipedge/sipedge/daemon/balancer"
	"github.com/sipedge/sipedge/daemon/failover"
	"github.com/sipedge/sipedge/daemon/pair"
	"github.com/sipedge/sipedge/daemon/replica"
	"github.com/sipedge/sipedge/daemon/version"
)

// setupPair makes the failover's heartbeats carry this box's pair
// summary (refreshed every heartbeat interval) and registers
// `ctl pair`: both boxes side by side.
func (a *App) setupPair(m *failover.Manager, interval time.Duration) {
	refresh := func() pair.Summary {
		s := a.pairSummary()
		b, err := pair.Encode(s)
		if err == nil {
			err = m.SetSummary(b)
		}
		if err != nil {
			a.log.Warn("pair summary not sent", "err", err)
		}
		return s
	}
	refresh()
	a.add("pair", func(ctx context.Context) error {
		t := time.NewTicker(max(interval, time.Second))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				refresh()
			}
		}
	})
	a.ctl.Handle(pair.MethodPair, "both boxes of the pair side by side: role, version, VIP groups and holders, Cores, calls, replication lag, last heartbeat", func(context.Context, json.RawMessage) (any, error) {
		return pair.Build(a.pairSummary(), m.Status(), m.Pair()), nil
	})
}

// pairSummary is what this box tells its peer about itself.
func (a *App) pairSummary() pair.Summary {
	cfg := a.Config()
	s := pair.Summary{Version: version.Version, Profile: cfg.Node.Profile, Kind: "edge",
		Uptime: int64(time.Since(a.started).Seconds())}
	if cfg.SIP == nil {
		s.Kind = "db"
	}
	if cs, ok := a.section("sip").(CoresStatus); ok {
		s.CoresTotal = len(cs.Cores)
		for _, c := range cs.Cores {
			if c.State == balancer.StateActive || c.State == balancer.StateTrying {
				s.CoresUp++
			}
			s.Calls += c.Calls
			s.Cores = append(s.Cores, pair.Core{Name: c.Name, State: string(c.State), Calls: c.Calls, LatencyMS: c.LatencyMS})
		}
	}
	if rs, ok := a.section("replica").(replica.Status); ok {
		s.Replica, s.Connected, s.LagMS = rs.Role, rs.Connected, rs.LagMS
	}
	return s
}

// section is the status section name now (nil if none).
func (a *App) section(name string) any {
	a.statusMu.Lock()
	fn := a.status[name]
	a.statusMu.Unlock()
	if fn == nil {
		return nil
	}
	return fn()
}
