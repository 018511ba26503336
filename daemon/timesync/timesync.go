package timesync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/beevik/ntp"
)

// MethodTime is the control method (and the status section) that shows
// the clock's synchronisation state; ctl, the web page and the console
// use this name.
const MethodTime = "time"

// Defaults of the time: section.
const (
	DefaultPoll          = 64 * time.Second
	DefaultStepThreshold = time.Second
	DefaultPanic         = 1000 * time.Second
	DefaultTimeout       = 2 * time.Second
	// MaxServers bounds time.ntp (each poll asks every server).
	MaxServers = 8
	// firstRetry is the wait after a failed poll; it doubles up to the
	// poll interval.
	firstRetry = 2 * time.Second
)

// Clock is the wall clock the syncer reads and corrects.
type Clock interface {
	Now() time.Time
	// Step adds d to the clock at once.
	Step(d time.Duration) error
	// Slew makes the clock gain d gradually (replacing a slew in progress).
	Slew(d time.Duration) error
}

// Options configure a Syncer.
type Options struct {
	// Servers are "IP" or "IP:port" (port 123 when left out).
	Servers []string
	// Poll is the interval between polls (DefaultPoll).
	Poll time.Duration
	// StepThreshold: a larger offset is stepped, a smaller one slewed.
	StepThreshold time.Duration
	// Panic: once the clock has been set, a larger offset is refused.
	Panic time.Duration
	// Adjust false only measures the offset.
	Adjust bool
	// Timeout bounds one server's answer (DefaultTimeout).
	Timeout time.Duration
	// Clock is corrected (SystemClock{} when nil). When it is not the
	// system clock, its Now is also what the NTP exchange measures.
	Clock  Clock
	Event  func(kind, subject, msg string)
	Logger *slog.Logger
}

// Syncer polls the servers and corrects the clock.
type Syncer struct {
	o       Options
	servers []string // host:port
	query   func(server string) (*ntp.Response, error)

	mu sync.Mutex
	st state
	// first carries the result of the poll Begin started, for Run.
	first chan error
}

type state struct {
	synced     bool
	everSet    bool // a poll succeeded since start (the panic threshold applies after it)
	server     string
	stratum    int
	offset     time.Duration
	rtt        time.Duration
	action     string
	lastSync   time.Time
	lastErr    string
	lastErrAt  time.Time
	panicking  bool
	steps      uint64
	slews      uint64
	polls      uint64
	errors     uint64
	lastStepBy time.Duration
}

// ParseServer returns s ("IP" or "IP:port") as IP:port.
func ParseServer(s string) (string, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a, 123).String(), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return "", fmt.Errorf("%q: want an IP address, optionally with :port (names are not resolved)", s)
	}
	if ap.Port() == 0 {
		return "", fmt.Errorf("%q: port 0 is not allowed", s)
	}
	return ap.String(), nil
}

// New checks o and builds a Syncer.
func New(o Options) (*Syncer, error) {
	if len(o.Servers) == 0 {
		return nil, errors.New("timesync: no NTP server")
	}
	if len(o.Servers) > MaxServers {
		return nil, fmt.Errorf("timesync: %d NTP servers, at most %d", len(o.Servers), MaxServers)
	}
	s := &Syncer{o: o}
	for _, srv := range o.Servers {
		hp, err := ParseServer(srv)
		if err != nil {
			return nil, fmt.Errorf("timesync: %w", err)
		}
		s.servers = append(s.servers, hp)
	}
	if s.o.Poll <= 0 {
		s.o.Poll = DefaultPoll
	}
	if s.o.StepThreshold <= 0 {
		s.o.StepThreshold = DefaultStepThreshold
	}
	if s.o.Panic <= 0 {
		s.o.Panic = DefaultPanic
	}
	if s.o.Timeout <= 0 {
		s.o.Timeout = DefaultTimeout
	}
	if s.o.Logger == nil {
		s.o.Logger = slog.New(slog.DiscardHandler)
	}
	if s.o.Event == nil {
		s.o.Event = func(string, string, string) {}
	}
	opt := ntp.QueryOptions{Timeout: s.o.Timeout}
	if s.o.Clock == nil {
		s.o.Clock = SystemClock{}
	} else if _, sys := s.o.Clock.(SystemClock); !sys {
		opt.GetSystemTime = s.o.Clock.Now
	}
	s.query = func(server string) (*ntp.Response, error) { return ntp.QueryWithOptions(server, opt) }
	return s, nil
}

// ErrFirstPending is Begin's answer when the first poll is not over
// within its wait (it goes on; Run takes its result).
var ErrFirstPending = errors.New("timesync: the first poll is still waiting for the servers")

// Begin starts the first poll and waits up to wait for it, so that the
// clock is set before the rest of the daemon starts (and stamps its
// first events) when a server answers at once. Run then goes on from
// that poll instead of starting its own: two polls never overlap.
func (s *Syncer) Begin(ctx context.Context, wait time.Duration) error {
	s.first = make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		err := s.SyncOnce(ctx)
		done <- err
		s.first <- err
	}()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return ErrFirstPending
	}
}

// Run polls until ctx ends: at once (or it takes the result of the poll
// Begin started), then every Poll; after a failed poll sooner (2 s,
// doubling up to Poll).
func (s *Syncer) Run(ctx context.Context) error {
	retry := firstRetry
	for {
		wait := s.o.Poll
		var err error
		if s.first != nil {
			select {
			case err = <-s.first:
			case <-ctx.Done():
				return nil
			}
			s.first = nil
		} else {
			err = s.SyncOnce(ctx)
		}
		if err != nil {
			wait = min(retry, s.o.Poll)
			retry = min(2*retry, s.o.Poll)
		} else {
			retry = firstRetry
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

type answer struct {
	server string
	r      *ntp.Response
}

// distance is the answer's synchronisation distance (RFC 5905 lambda
// plus half the round trip): the smaller, the better.
func (a answer) distance() time.Duration {
	return a.r.RootDelay/2 + a.r.RootDispersion + a.r.RTT/2
}

// SyncOnce asks every server once and corrects the clock from the best
// valid answer.
func (s *Syncer) SyncOnce(ctx context.Context) error {
	var best *answer
	var errs []error
	for _, srv := range s.servers {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r, err := s.query(srv)
		if err == nil {
			err = r.Validate()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", srv, err))
			continue
		}
		if a := (answer{srv, r}); best == nil || a.distance() < best.distance() {
			best = &a
		}
	}
	if best == nil {
		return s.fail(fmt.Errorf("timesync: no server answered usably: %w", errors.Join(errs...)), false)
	}
	return s.apply(*best)
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// apply corrects the clock by the answer's offset.
func (s *Syncer) apply(a answer) error {
	off := a.r.ClockOffset
	s.mu.Lock()
	first := !s.st.everSet
	s.mu.Unlock()
	if !first && abs(off) > s.o.Panic {
		return s.fail(fmt.Errorf("timesync: %s says the clock is off by %v, beyond time.panic (%v): the clock is left alone (restart the daemon to accept it)", a.server, off.Round(time.Millisecond), s.o.Panic), true)
	}
	action := "none"
	var err error
	switch {
	case !s.o.Adjust:
	case abs(off) > s.o.StepThreshold:
		action, err = "step", s.o.Clock.Step(off)
	default:
		action, err = "slew", s.o.Clock.Slew(off)
	}
	if err != nil {
		return s.fail(err, false)
	}
	now := time.Now()
	s.mu.Lock()
	was := s.st.synced
	s.st.synced, s.st.everSet, s.st.panicking = true, true, false
	s.st.server, s.st.stratum, s.st.offset, s.st.rtt, s.st.action = a.server, int(a.r.Stratum), off, a.r.RTT, action
	s.st.lastSync = now
	s.st.polls++
	switch action {
	case "step":
		s.st.steps++
		s.st.lastStepBy = off
	case "slew":
		s.st.slews++
	}
	s.mu.Unlock()
	log := s.o.Logger.With("server", a.server, "stratum", a.r.Stratum, "offset", off, "rtt", a.r.RTT, "action", action)
	if action == "step" {
		log.Warn("timesync: clock stepped")
		s.o.Event("time.step", a.server, fmt.Sprintf("clock stepped by %v (server %s, stratum %d)", off.Round(time.Millisecond), a.server, a.r.Stratum))
	}
	if !was {
		log.Info("timesync: synchronised")
		s.o.Event("time.sync", a.server, fmt.Sprintf("clock synchronised to %s (stratum %d, offset %v, %s)", a.server, a.r.Stratum, off.Round(time.Millisecond), action))
	} else {
		log.Debug("timesync: poll")
	}
	return nil
}

// fail records a failed poll; the state change (synced -> not) is
// logged and an event, not every failure.
func (s *Syncer) fail(err error, panicked bool) error {
	s.mu.Lock()
	was, wasPanic := s.st.synced, s.st.panicking
	first := s.st.errors == 0
	s.st.synced = false
	s.st.panicking = panicked
	s.st.lastErr, s.st.lastErrAt = err.Error(), time.Now()
	s.st.polls++
	s.st.errors++
	s.mu.Unlock()
	switch {
	case panicked && !wasPanic:
		s.o.Logger.Error("timesync: offset beyond the panic threshold", "err", err)
		s.o.Event("time.panic", "clock", err.Error())
	case was || first:
		s.o.Logger.Warn("timesync: not synchronised", "err", err)
		if was {
			s.o.Event("time.unsynced", "clock", err.Error())
		}
	default:
		s.o.Logger.Debug("timesync: poll failed", "err", err)
	}
	return err
}

// Status is the clock's synchronisation state (ctl time, the status
// section "time", the web page).
type Status struct {
	Servers []string `json:"servers"`
	Adjust  bool     `json:"adjust"`
	// Synced: the last poll succeeded.
	Synced  bool   `json:"synced"`
	Server  string `json:"server,omitempty"`
	Stratum int    `json:"stratum,omitempty"`
	// Offset is what the last good poll measured, before correcting it.
	Offset        string     `json:"offset,omitempty"`
	OffsetSeconds float64    `json:"offset_seconds"`
	RTT           string     `json:"rtt,omitempty"`
	LastAction    string     `json:"last_action,omitempty"` // step | slew | none
	LastSync      *time.Time `json:"last_sync,omitempty"`
	LastSyncAgo   string     `json:"last_sync_ago,omitempty"`
	Polls         uint64     `json:"polls"`
	Steps         uint64     `json:"steps"`
	Slews         uint64     `json:"slews"`
	Errors        uint64     `json:"errors"`
	LastError     string     `json:"last_error,omitempty"`
	LastErrorAt   *time.Time `json:"last_error_at,omitempty"`
	// Panic: the last answer was beyond the panic threshold.
	Panic bool `json:"panic,omitempty"`
}

// Status returns the current state.
func (s *Syncer) Status() Status {
	s.mu.Lock()
	st := s.st
	s.mu.Unlock()
	v := Status{Servers: s.servers, Adjust: s.o.Adjust, Synced: st.synced, Server: st.server, Stratum: st.stratum,
		OffsetSeconds: st.offset.Seconds(), LastAction: st.action, Polls: st.polls, Steps: st.steps, Slews: st.slews,
		Errors: st.errors, LastError: st.lastErr, Panic: st.panicking}
	if !st.lastSync.IsZero() {
		t := st.lastSync
		v.LastSync, v.LastSyncAgo = &t, time.Since(t).Round(time.Millisecond).String()
		v.Offset, v.RTT = st.offset.String(), st.rtt.String()
	}
	if !st.lastErrAt.IsZero() {
		t := st.lastErrAt
		v.LastErrorAt = &t
	}
	return v
}
