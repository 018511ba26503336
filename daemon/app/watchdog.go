package app

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

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
	var p *watchdog.Policy
	var missing string
	a.ctl.Handle("watchdog", "the hardware watchdog: armed, timeout, last keepalive, whether the last reset was the watchdog's", func(context.Context, json.RawMessage) (any, error) {
		return watchdogView(cfg.Device, p, missing, time.Now()), nil
	})
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
			missing = err.Error()
			a.addStatus("watchdog", func() any { return watchdogView(cfg.Device, nil, missing, time.Now()) })
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
	p, err = watchdog.New(watchdog.Options{
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
	if err := a.metrics().Register(newWatchdogCollector(p)); err != nil {
		a.log.Warn("watchdog metrics not registered", "err", err)
	}
	a.addStatus("watchdog", func() any { return watchdogView(cfg.Device, p, "", time.Now()) })
	return nil
}

// WatchdogView is `ctl watchdog` and the status' watchdog section.
type WatchdogView struct {
	Device     string `json:"device,omitempty"` // empty: none configured
	Armed      bool   `json:"armed"`
	Timeout    string `json:"timeout,omitempty"`
	Keepalives uint64 `json:"keepalives"`
	// LastKeepalive and its age; the board resets Timeout after it.
	LastKeepalive    *time.Time `json:"last_keepalive,omitempty"`
	LastKeepaliveAgo string     `json:"last_keepalive_ago,omitempty"`
	// Withholding: some subsystem is stale and feeding has stopped.
	Withholding         bool     `json:"withholding"`
	Stale               []string `json:"stale,omitempty"`
	LastResetByWatchdog bool     `json:"last_reset_by_watchdog"`
	Error               string   `json:"error,omitempty"`
}

func watchdogView(device string, p *watchdog.Policy, missing string, now time.Time) WatchdogView {
	v := WatchdogView{Device: device, Error: missing}
	if p == nil {
		return v
	}
	st := p.Status()
	v.Armed, v.Keepalives, v.Withholding, v.Stale, v.LastResetByWatchdog = st.Armed, st.Keepalives, st.Withholding, st.Stale, st.LastResetByWatchdog
	if st.Timeout > 0 {
		v.Timeout = st.Timeout.String()
	}
	if !st.LastKeepalive.IsZero() {
		t := st.LastKeepalive
		v.LastKeepalive = &t
		v.LastKeepaliveAgo = now.Sub(t).Round(time.Millisecond).String()
	}
	if st.LastError != "" {
		v.Error = st.LastError
	}
	return v
}
