// Package watchdog is sipedge's watchdog policy: it feeds the hardware
// watchdog (a hal.Watchdog) only while every subsystem registered for
// liveness (SIP intake, the VIP state machine, the store, ...) has
// reported recently. A hung balancer therefore resets the box, where an
// appliance that feeds the watchdog blindly from PID 1 would keep a
// wedged daemon alive forever.
//
// On a clean shutdown the policy disarms the watchdog with the magic
// close; when the daemon dies any other way the device is closed without
// it and the board resets unless a new daemon opens it again in time.
// Status tells whether the last reset of the board was the watchdog's.
package watchdog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/sipedge/sipedge/hal"
)

// Checker reports whether every subsystem has reported liveness recently,
// and names those that have not. *liveness.Registry implements it.
type Checker interface {
	Check(now time.Time) (ok bool, stale []string)
}

// Options configure a Policy.
type Options struct {
	Device hal.Watchdog // opened (armed) watchdog
	// Timeout is set on the device at start; zero keeps the driver's.
	Timeout time.Duration
	Health  Checker
	// Interval between checks (and so keepalives); default Timeout/4,
	// at most 1s.
	Interval time.Duration
	// BootReset is whether the board's last reset was the watchdog's, as
	// read at start (hal.WatchdogBootStatus or Device.BootStatus).
	BootReset bool
	Logger    *slog.Logger
	// OnWithhold is called once each time feeding stops, with the stale
	// subsystems (e.g. to record an event). Optional.
	OnWithhold func(stale []string)
	// Now is the clock (time.Now if nil), for tests.
	Now func() time.Time
}

// Status is the policy's state for status pages and ctl.
type Status struct {
	Armed         bool          `json:"armed"`
	Timeout       time.Duration `json:"timeout"`
	Keepalives    uint64        `json:"keepalives"`
	LastKeepalive time.Time     `json:"last_keepalive"`
	// Withholding is true while some subsystem is stale: the board will
	// reset within Timeout of LastKeepalive unless it recovers.
	Withholding bool     `json:"withholding"`
	Stale       []string `json:"stale,omitempty"`
	// LastResetByWatchdog says the previous boot ended in a watchdog reset.
	LastResetByWatchdog bool   `json:"last_reset_by_watchdog"`
	LastError           string `json:"last_error,omitempty"`
}

// Policy feeds a watchdog on liveness.
type Policy struct {
	opts Options
	log  *slog.Logger

	mu sync.Mutex
	st Status
}

// New checks opts and returns a Policy; Run starts it.
func New(opts Options) (*Policy, error) {
	if opts.Device == nil || opts.Health == nil {
		return nil, errors.New("watchdog: Device and Health are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Policy{opts: opts, log: opts.Logger, st: Status{LastResetByWatchdog: opts.BootReset}}, nil
}

func (p *Policy) interval(timeout time.Duration) time.Duration {
	if p.opts.Interval > 0 {
		return p.opts.Interval
	}
	iv := timeout / 4
	if iv <= 0 || iv > time.Second {
		iv = time.Second
	}
	return iv
}

// Start sets the timeout and gives the first keepalive.
func (p *Policy) start() (time.Duration, error) {
	if p.opts.Timeout > 0 {
		if err := p.opts.Device.SetTimeout(p.opts.Timeout); err != nil {
			return 0, fmt.Errorf("watchdog: %w", err)
		}
	}
	timeout, err := p.opts.Device.Timeout()
	if err != nil {
		timeout = p.opts.Timeout
	}
	p.mu.Lock()
	p.st.Armed = true
	p.st.Timeout = timeout
	p.mu.Unlock()
	p.log.Info("watchdog armed", "timeout", timeout, "last_reset_by_watchdog", p.opts.BootReset)
	return timeout, nil
}

// Run arms the policy and feeds the watchdog while the Checker is healthy,
// until ctx ends; then it disarms the watchdog with the magic close (a
// clean shutdown) and returns nil. Call Abandon instead of cancelling ctx
// when the daemon stops because something is wrong.
func (p *Policy) Run(ctx context.Context) error {
	timeout, err := p.start()
	if err != nil {
		return err
	}
	t := time.NewTicker(p.interval(timeout))
	defer t.Stop()
	for {
		p.Tick()
		select {
		case <-ctx.Done():
			p.mu.Lock()
			p.st.Armed = false
			p.mu.Unlock()
			if err := p.opts.Device.Close(); err != nil {
				return fmt.Errorf("watchdog: magic close: %w", err)
			}
			p.log.Info("watchdog disarmed (clean shutdown)")
			return nil
		case <-t.C:
		}
	}
}

// Tick checks liveness once and feeds the watchdog if every subsystem is
// alive. Run calls it every interval.
func (p *Policy) Tick() {
	now := p.opts.Now()
	ok, stale := p.opts.Health.Check(now)
	p.mu.Lock()
	was := p.st.Withholding
	p.st.Withholding = !ok
	p.st.Stale = slices.Clone(stale)
	p.mu.Unlock()
	if !ok {
		if !was {
			p.log.Error("watchdog: withholding keepalive, subsystems stale: the board resets unless they recover", "stale", stale)
			if p.opts.OnWithhold != nil {
				p.opts.OnWithhold(stale)
			}
		}
		return
	}
	if was {
		p.log.Warn("watchdog: every subsystem alive again, feeding resumed")
	}
	err := p.opts.Device.Keepalive()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.st.LastError = err.Error()
		p.log.Error("watchdog keepalive", "err", err)
		return
	}
	p.st.LastError = ""
	p.st.Keepalives++
	p.st.LastKeepalive = now
}

// Abandon closes the device without the magic close: the watchdog stays
// armed and resets the board unless someone feeds it again in time.
func (p *Policy) Abandon() error {
	return p.opts.Device.Abandon()
}

// Status returns a snapshot.
func (p *Policy) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.st
	s.Stale = slices.Clone(s.Stale)
	return s
}
