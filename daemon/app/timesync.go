package app

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"

	"github.com/sipedge/sipedge/daemon/config"
	"github.com/sipedge/sipedge/daemon/timesync"
)

// setupTime starts the SNTP client when time.ntp lists servers: its
// first poll, at daemon start, steps a clock that is far off (the
// image's clock is set so at boot); its state is the "time" status
// section, `ctl time`, and the sipedge_time_* metrics. It runs after
// the network (the management address) and before the failover.
func (a *App) setupTime(context.Context) error {
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
	a.add("time", s.Run)
	return nil
}
