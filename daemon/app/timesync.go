package app

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"time"

	"github.com/sipedge/sipedge/daemon/config"
	"github.com/sipedge/sipedge/daemon/timesync"
)

// setupTime starts the SNTP client when time.ntp lists servers: its
// first poll, during the daemon's start, steps a clock that is far off
// (the image's clock is set so at boot); its state is the "time" status
// section, `ctl time`, and the sipedge_time_* metrics. It runs after
// the network (the management address) and before the failover.
func (a *App) setupTime(ctx context.Context) error {
	cfg := a.Config().Time
	var s *timesync.Syncer
	a.ctl.Handle(timesync.MethodTime, "time sync (SNTP): servers, synced, offset, last sync, stratum, error", func(context.Context, json.RawMessage) (any, error) {
		if s == nil {
			return timesync.Status{Servers: []string{}}, nil
		}
		return s.Status(), nil
	})
	a.onReload("time", func(c *config.Config) error {
		if !reflect.DeepEqual(c.Time, cfg) {
			return errors.New("time: changes take effect at the next start")
		}
		return nil
	})
	if len(cfg.NTP) == 0 {
		return nil
	}
	var err error
	s, err = timesync.New(timesync.Options{
		Servers: cfg.NTP, Poll: cfg.Poll.D(), StepThreshold: cfg.StepThreshold.D(), Panic: cfg.Panic.D(),
		Adjust: cfg.AdjustOn(), Event: a.events.Event, Logger: a.log.With("subsystem", "time"),
	})
	if err != nil {
		return err
	}
	if err := a.metrics().Register(timesync.NewCollector(s)); err != nil {
		a.log.Warn("time metrics not registered", "err", err)
	}
	a.addStatus(timesync.MethodTime, func() any { return s.Status() })
	// The first poll before the other subsystems start: at boot the
	// clock is set before the heartbeats and the first events, when a
	// server answers within firstSyncWait; else it goes on in Run.
	if err := s.Begin(ctx, firstSyncWait); errors.Is(err, timesync.ErrFirstPending) {
		a.log.Warn("time: no NTP answer yet; starting, the clock is set when one comes", "waited", firstSyncWait)
	}
	a.add("time", s.Run)
	return nil
}

// firstSyncWait bounds how long the daemon's start waits for its first
// NTP answer.
const firstSyncWait = 3 * time.Second
