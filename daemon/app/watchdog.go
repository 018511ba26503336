package app

import (
	"context"
	"errors"
	"strings"

	"github.com/sipedge/sipedge/daemon/watchdog"
	"github.com/sipedge/sipedge/hal"
)

// setupWatchdog arms the hardware watchdog named by watchdog.device and
// feeds it only while every liveness subsystem is recent (see
// daemon/watchdog). Whether the last reset was the watchdog's is read
// from sysfs before arming, logged, recorded as an event and shown in
// status. A configured device that the system lacks is logged, not fatal.
func (a *App) setupWatchdog(ctx context.Context) error {
	cfg := a.Config().Watchdog
	if cfg.Device == "" {
		return nil
	}
	node := a.Config().Node.Name
	bootReset, err := hal.WatchdogBootStatus("/sys", cfg.Device)
	if err != nil {
		a.log.Warn("watchdog boot status", "err", err)
	}
	dev, err := hal.OpenWatchdog(cfg.Device, cfg.Timeout.D())
	if err != nil {
		if errors.Is(err, hal.ErrUnsupported) {
			a.log.Error("watchdog configured but not available: running without it", "device", cfg.Device, "err", err)
			a.events.Event("watchdog.missing", node, "watchdog "+cfg.Device+" not available")
			return nil
		}
		return err
	}
	if !bootReset {
		if r, err := dev.BootStatus(); err == nil {
			bootReset = r
		}
	}
	if bootReset {
		a.events.Event("watchdog.reset", node, "the last reset was by the watchdog")
	}
	p, err := watchdog.New(watchdog.Options{
		Device: dev, Timeout: cfg.Timeout.D(), Health: a.live, BootReset: bootReset, Logger: a.log,
		OnWithhold: func(stale []string) {
			a.events.Event("watchdog.withhold", node, "keepalive withheld, stale: "+strings.Join(stale, ","))
		},
	})
	if err != nil {
		dev.Abandon()
		return err
	}
	a.add("watchdog", p.Run)
	a.addStatus("watchdog", func() any { return p.Status() })
	return nil
}
