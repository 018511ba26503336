package initd

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// SuperviseOptions tell Supervise how to run the daemon.
type SuperviseOptions struct {
	// Start starts the daemon and returns its pid.
	Start func() (pid int, err error)
	// Wait returns a channel that yields once the process has exited,
	// with a description of how ("exit status 1", "signal: killed").
	Wait func(pid int) <-chan string
	// OnExit runs at once when the daemon has died, before any delay:
	// PID 1 removes the daemon's VIP addresses there.
	OnExit func(how string)
	// RestartDelay is waited before a restart (default 1s).
	RestartDelay time.Duration
	// MaxRestarts within Window make Supervise give up and return, so
	// that PID 1 reboots the box (defaults 5 in 1 minute).
	MaxRestarts int
	Window      time.Duration
	Logger      *slog.Logger
	Now         func() time.Time
	Sleep       func(ctx context.Context, d time.Duration)
}

// Supervisor runs the daemon and restarts it.
type Supervisor struct {
	opts SuperviseOptions
	mu   sync.Mutex
	pid  int
	runs int
}

// NewSupervisor fills in the defaults.
func NewSupervisor(o SuperviseOptions) *Supervisor {
	if o.RestartDelay <= 0 {
		o.RestartDelay = time.Second
	}
	if o.MaxRestarts <= 0 {
		o.MaxRestarts = 5
	}
	if o.Window <= 0 {
		o.Window = time.Minute
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
	return &Supervisor{opts: o}
}

// DaemonPID is the running daemon's pid, 0 if none.
func (s *Supervisor) DaemonPID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pid
}

// Starts is how many times the daemon was started.
func (s *Supervisor) Starts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs
}

// Run starts the daemon and restarts it after RestartDelay each time it
// dies, calling OnExit first. It returns when ctx ends, or when the
// daemon died MaxRestarts times within Window (or cannot be started):
// the caller reboots then.
func (s *Supervisor) Run(ctx context.Context) error {
	var deaths []time.Time
	log := s.opts.Logger
	for ctx.Err() == nil {
		pid, err := s.opts.Start()
		if err != nil {
			log.Error("initd: cannot start the daemon", "err", err)
			return err
		}
		s.mu.Lock()
		s.pid, s.runs = pid, s.runs+1
		s.mu.Unlock()
		log.Info("initd: daemon started", "pid", pid)
		var how string
		select {
		case how = <-s.opts.Wait(pid):
		case <-ctx.Done():
			return ctx.Err()
		}
		s.mu.Lock()
		s.pid = 0
		s.mu.Unlock()
		log.Error("initd: daemon died", "pid", pid, "how", how)
		if s.opts.OnExit != nil {
			s.opts.OnExit(how)
		}
		now := s.opts.Now()
		deaths = append(deaths, now)
		for len(deaths) > 0 && now.Sub(deaths[0]) > s.opts.Window {
			deaths = deaths[1:]
		}
		if len(deaths) >= s.opts.MaxRestarts {
			log.Error("initd: daemon keeps dying, giving up", "deaths", len(deaths), "window", s.opts.Window)
			return errGaveUp
		}
		s.opts.Sleep(ctx, s.opts.RestartDelay)
	}
	return ctx.Err()
}

// sleepCtx sleeps for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
