package web

import (
	"net/netip"
	"sync"
	"time"
)

// Lockout limits password guessing. Every login attempt takes a slot
// before its password is checked (the check costs a PBKDF2 run): the
// failure is counted when the slot is taken and given back only when the
// password was right, so parallel guesses cannot slip past the count.
//
//   - Per source (an IPv4 address, an IPv6 /64): one check in flight at a
//     time; after Failures attempts within Window the source is locked
//     out for LockFor.
//   - Outside the administration networks (web.admin_from): at most
//     MaxChecks checks in flight together, and after GlobalFailures
//     attempts from all such sources within Window every one of them is
//     locked out for LockFor (a spread-out guess). The administration
//     networks are never held by this global limit, so a flood from the
//     rest of the LAN cannot lock the operator out.
//
// A refused attempt is answered 429 at once, with no check.
type Lockout struct {
	Failures       int
	GlobalFailures int
	Window         time.Duration
	LockFor        time.Duration
	MaxChecks      int
}

// DefaultLockout is the appliance's policy.
var DefaultLockout = Lockout{Failures: 5, GlobalFailures: 50, Window: 15 * time.Minute, LockFor: 5 * time.Minute, MaxChecks: 2}

// maxSources bounds the per-source table.
const maxSources = 4096

// Why an attempt was refused (also the API's error codes and the
// sipedge_web_logins_total results).
const (
	refusedLocked = "locked_out" // this source failed too often
	refusedGlobal = "global_locked_out"
	refusedBusy   = "busy" // a check from this source (or too many) in flight
)

type failRecord struct {
	first  time.Time
	count  int       // attempts in the window, those in flight included
	locked time.Time // until
	busy   bool      // a check in flight
}

type limiter struct {
	mu       sync.Mutex
	pol      Lockout
	now      func() time.Time
	bySource map[netip.Prefix]*failRecord
	global   failRecord
	inflight int // checks in flight from outside the administration networks
}

func newLimiter(pol Lockout, now func() time.Time) *limiter {
	d := DefaultLockout
	if pol.Failures <= 0 {
		pol.Failures = d.Failures
	}
	if pol.GlobalFailures <= 0 {
		pol.GlobalFailures = 10 * pol.Failures
	}
	if pol.Window <= 0 {
		pol.Window = d.Window
	}
	if pol.LockFor <= 0 {
		pol.LockFor = d.LockFor
	}
	if pol.MaxChecks <= 0 {
		pol.MaxChecks = d.MaxChecks
	}
	return &limiter{pol: pol, now: now, bySource: map[netip.Prefix]*failRecord{}}
}

// sourceOf is the unit one attacker holds: an IPv4 address, an IPv6 /64.
func sourceOf(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p
	}
	return netip.PrefixFrom(a, a.BitLen())
}

// ticket is a reserved check; done must be called once with its outcome.
type ticket struct {
	l        *limiter
	src      netip.Prefix
	admin    bool
	window   time.Time // the global window the attempt was counted in
	lockedBy bool      // this attempt reached the source's limit
}

// reserve takes a slot for one password check from addr, counting it as
// a failure until done says otherwise. On refusal it returns the reason
// and how long to wait.
func (l *limiter) reserve(addr netip.Addr, admin bool) (*ticket, string, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	src := sourceOf(addr)
	r := l.bySource[src]
	if r != nil && now.Before(r.locked) {
		return nil, refusedLocked, r.locked.Sub(now)
	}
	if r != nil && r.busy {
		return nil, refusedBusy, time.Second
	}
	if !admin {
		if now.Before(l.global.locked) {
			return nil, refusedGlobal, l.global.locked.Sub(now)
		}
		if l.inflight >= l.pol.MaxChecks {
			return nil, refusedBusy, time.Second
		}
	}
	if r == nil {
		if len(l.bySource) >= maxSources {
			l.pruneLocked(now)
		}
		if len(l.bySource) >= maxSources {
			return nil, refusedBusy, time.Second
		}
		r = &failRecord{}
		l.bySource[src] = r
	}
	t := &ticket{l: l, src: src, admin: admin}
	r.busy = true
	t.lockedBy = l.bump(r, l.pol.Failures, now)
	if !admin {
		l.inflight++
		l.bump(&l.global, l.pol.GlobalFailures, now)
		t.window = l.global.first
	}
	return t, "", 0
}

// done ends the check: a right password forgets the source's failures
// and gives back its place in the global count. It reports whether this
// attempt locked the source out.
func (t *ticket) done(ok bool) (lockedOut bool) {
	l := t.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if !t.admin {
		l.inflight--
		if ok && l.global.first.Equal(t.window) && l.global.count > 0 {
			l.global.count--
		}
	}
	r := l.bySource[t.src]
	if r == nil {
		return false
	}
	r.busy = false
	if ok {
		delete(l.bySource, t.src)
		return false
	}
	return t.lockedBy
}

// bump counts one attempt in r's window and locks r once it reaches max;
// it reports whether it did.
func (l *limiter) bump(r *failRecord, max int, now time.Time) bool {
	if now.Sub(r.first) > l.pol.Window {
		r.first, r.count = now, 0
	}
	r.count++
	if r.count >= max {
		r.locked = now.Add(l.pol.LockFor)
		r.first, r.count = now, 0
		return true
	}
	return false
}

// pruneLocked forgets settled records (window over, not locked, idle).
func (l *limiter) pruneLocked(now time.Time) {
	for k, r := range l.bySource {
		if !r.busy && now.Sub(r.first) > l.pol.Window && !now.Before(r.locked) {
			delete(l.bySource, k)
		}
	}
}
