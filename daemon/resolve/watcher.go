package resolve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Defaults of WatchConfig.
const (
	DefaultMinTTL   = 5 * time.Second
	DefaultMaxTTL   = time.Hour
	DefaultRetry    = 5 * time.Second
	DefaultMaxRetry = time.Minute
	DefaultStaleFor = time.Hour
)

// WatchConfig is one configured name to keep resolved.
type WatchConfig struct {
	// Name, Transport and Port are Lookup's arguments: a name from the
	// configuration, never one from the wire.
	Name      string
	Transport string
	Port      uint16
	// MinTTL and MaxTTL clamp the answer's TTL: the name is asked again
	// after that long (defaults 5s and 1h).
	MinTTL, MaxTTL time.Duration
	// Retry is the wait after a failed resolution, doubled after each
	// further failure up to MaxRetry (defaults 5s and 1m).
	Retry, MaxRetry time.Duration
	// StaleFor is how long the last good answer is kept once its TTL has
	// run out and resolutions fail (default 1h); after it the target set
	// is empty.
	StaleFor time.Duration
	// OnChange receives the new target set (sorted, a copy; empty when
	// the stale period ran out) each time it changes. It is called from
	// the Watcher's goroutine, one call at a time: it must not block
	// for long.
	OnChange func([]Target)
	// Clock is the time read and waited on (default: the real one).
	Clock Clock
	// Log gets the Watcher's lines (default slog.Default()).
	Log *slog.Logger
}

// State is a Watcher's view, for status and metrics.
type State struct {
	Name      string   `json:"name"`
	Transport string   `json:"transport"`
	Targets   []Target `json:"targets"` // in force (the last good answer while stale)
	SRV       bool     `json:"srv"`     // the targets came from SRV records
	// LastGood is when the last successful resolution was (zero: never).
	LastGood time.Time `json:"last_good"`
	// Expires is when the answer in force runs out (LastGood + the
	// clamped TTL).
	Expires time.Time `json:"expires"`
	// LastAttempt and NextAttempt are the last and the next resolution.
	LastAttempt time.Time `json:"last_attempt"`
	NextAttempt time.Time `json:"next_attempt"`
	// LastError is the last resolution's error ("" when it succeeded).
	LastError string `json:"last_error,omitempty"`
	// Failures counts the resolutions failed in a row.
	Failures int `json:"failures"`
	// Stale: the answer's TTL has run out and resolutions fail; the
	// last good answer is still in force (until Expires + StaleFor).
	Stale bool `json:"stale"`
	// Dropped: the stale period ran out; no targets until a resolution
	// succeeds.
	Dropped bool `json:"dropped"`
}

// Watcher keeps one configured name resolved.
type Watcher struct {
	r    *Resolver
	cfg  WatchConfig
	done chan struct{}
	once sync.Once

	mu sync.Mutex
	st State
}

// NewWatcher checks cfg, fills its defaults and returns a Watcher; Start
// or Run makes it work.
func NewWatcher(r *Resolver, cfg WatchConfig) (*Watcher, error) {
	if r == nil {
		return nil, errors.New("resolve: watcher: no resolver")
	}
	if cfg.Name == "" {
		return nil, errors.New("resolve: watcher: no name")
	}
	tp, err := normTransport(cfg.Transport)
	if err != nil {
		return nil, fmt.Errorf("resolve: watcher %s: %w", cfg.Name, err)
	}
	cfg.Transport = tp
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.MinTTL, DefaultMinTTL)
	def(&cfg.MaxTTL, DefaultMaxTTL)
	def(&cfg.Retry, DefaultRetry)
	def(&cfg.MaxRetry, DefaultMaxRetry)
	def(&cfg.StaleFor, DefaultStaleFor)
	if cfg.MaxTTL < cfg.MinTTL {
		return nil, fmt.Errorf("resolve: watcher %s: MaxTTL %s is below MinTTL %s", cfg.Name, cfg.MaxTTL, cfg.MinTTL)
	}
	if cfg.MaxRetry < cfg.Retry {
		cfg.MaxRetry = cfg.Retry
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	cfg.Log = cfg.Log.With("name", cfg.Name, "transport", tp)
	return &Watcher{r: r, cfg: cfg, done: make(chan struct{}), st: State{Name: cfg.Name, Transport: tp}}, nil
}

// Start runs the Watcher in its own goroutine until ctx ends; Done is
// closed when it has stopped.
func (w *Watcher) Start(ctx context.Context) {
	go w.Run(ctx)
}

// Done is closed when Run has returned.
func (w *Watcher) Done() <-chan struct{} { return w.done }

// Run resolves the name at once, then each time the answer runs out,
// until ctx ends. It returns nil when ctx ends; a Watcher runs once.
func (w *Watcher) Run(ctx context.Context) error {
	started := false
	w.once.Do(func() { started = true })
	if !started {
		return errors.New("resolve: watcher already run")
	}
	defer close(w.done)
	for {
		wait := w.resolve(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if wait < 0 {
			<-ctx.Done() // an IP literal: nothing to re-resolve
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.cfg.Clock.After(wait):
		}
	}
}

// State returns a copy of the Watcher's state.
func (w *Watcher) State() State {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.st
	st.Targets = slices.Clone(st.Targets)
	return st
}

// Targets returns the target set in force.
func (w *Watcher) Targets() []Target { return w.State().Targets }

// resolve makes one resolution, updates the state, calls OnChange when
// the set changed, and returns the wait until the next one (-1: none).
func (w *Watcher) resolve(ctx context.Context) time.Duration {
	c := w.cfg
	res, err := w.r.Lookup(ctx, c.Name, c.Transport, c.Port)
	if ctx.Err() != nil {
		return 0
	}
	now := c.Clock.Now()
	w.mu.Lock()
	st := &w.st
	st.LastAttempt = now
	old := st.Targets
	var wait time.Duration
	if err == nil {
		wait = clamp(res.TTL, c.MinTTL, c.MaxTTL)
		if res.Literal {
			wait = -1
		}
		st.Targets, st.SRV = res.Targets, res.SRV
		st.LastGood, st.Expires = now, now.Add(wait)
		st.LastError, st.Failures, st.Stale, st.Dropped = "", 0, false, false
		if res.Literal {
			st.Expires = time.Time{}
		}
	} else {
		st.LastError = err.Error()
		st.Failures++
		wait = c.Retry << min(st.Failures-1, 16)
		wait = min(wait, c.MaxRetry)
		switch {
		case st.LastGood.IsZero() || st.Dropped:
			c.Log.Warn("resolve: no answer", "err", err, "failures", st.Failures, "retry_in", wait)
		case now.Before(st.Expires):
			// Failed before the answer ran out (not the Watcher's own
			// schedule): the answer still holds.
			wait = min(wait, st.Expires.Sub(now))
			c.Log.Warn("resolve: failed, the answer in force still holds", "err", err, "age", now.Sub(st.LastGood), "expires", st.Expires)
		case now.Before(st.Expires.Add(c.StaleFor)):
			st.Stale = true
			until := st.Expires.Add(c.StaleFor)
			wait = min(wait, until.Sub(now))
			c.Log.Warn("resolve: failed, keeping the last good answer", "err", err, "age", now.Sub(st.LastGood).Round(time.Second), "targets", len(st.Targets), "stale_until", until, "failures", st.Failures)
		default:
			st.Targets, st.Stale, st.Dropped = nil, false, true
			c.Log.Error("resolve: stale period over, no targets until DNS answers", "err", err, "age", now.Sub(st.LastGood).Round(time.Second), "stale_for", c.StaleFor, "failures", st.Failures)
		}
	}
	if wait >= 0 {
		st.NextAttempt = now.Add(wait)
	} else {
		st.NextAttempt = time.Time{}
	}
	changed := !SameTargets(old, st.Targets)
	targets := slices.Clone(st.Targets)
	w.mu.Unlock()
	if changed {
		if err == nil {
			c.Log.Info("resolve: targets changed", "targets", targets, "ttl", res.TTL, "srv", res.SRV)
		}
		if c.OnChange != nil {
			c.OnChange(targets)
		}
	}
	return wait
}

func clamp(d, lo, hi time.Duration) time.Duration { return max(lo, min(d, hi)) }
