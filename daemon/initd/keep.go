package initd

import (
	"context"
	"log/slog"
	"time"
)

// KeepOptions tell KeepRunning how to run a helper process (the serial
// console menu): unlike the daemon, a helper that keeps dying never
// reboots the box, it is only started again more slowly.
type KeepOptions struct {
	Name string
	// Start starts the process and returns its pid.
	Start func() (pid int, err error)
	// Wait yields once the process has exited, with how.
	Wait func(pid int) <-chan string
	// MinDelay is waited before a restart (default 1s); it doubles each
	// time the process lives less than StableAfter, up to MaxDelay.
	MinDelay, MaxDelay time.Duration
	StableAfter        time.Duration // default 30s
	Logger             *slog.Logger
	Now                func() time.Time
	Sleep              func(ctx context.Context, d time.Duration)
}

// KeepRunning runs the helper and starts it again each time it exits or
// fails to start, until ctx ends.
func KeepRunning(ctx context.Context, o KeepOptions) {
	if o.MinDelay <= 0 {
		o.MinDelay = time.Second
	}
	if o.MaxDelay < o.MinDelay {
		o.MaxDelay = 30 * o.MinDelay
	}
	if o.StableAfter <= 0 {
		o.StableAfter = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleepCtx
	}
	delay := o.MinDelay
	for ctx.Err() == nil {
		began := o.Now()
		pid, err := o.Start()
		if err != nil {
			o.Logger.Error("initd: cannot start "+o.Name, "err", err, "retry_in", delay)
		} else {
			o.Logger.Info("initd: "+o.Name+" started", "pid", pid)
			select {
			case how := <-o.Wait(pid):
				o.Logger.Warn("initd: "+o.Name+" exited", "pid", pid, "how", how)
			case <-ctx.Done():
				return
			}
		}
		if err == nil && o.Now().Sub(began) >= o.StableAfter {
			delay = o.MinDelay
		}
		o.Sleep(ctx, delay)
		delay = min(2*delay, o.MaxDelay)
	}
}
