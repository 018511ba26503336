package web

import (
	"sync"
	"time"
)

// Lockout limits password guessing: after Failures failed logins from one
// address within Window, that address is locked out for LockFor; after
// GlobalFailures from all addresses together within Window, every login
// is locked out for LockFor (a spread-out guess).
type Lockout struct {
	Failures       int
	GlobalFailures int
	Window         time.Duration
	LockFor        time.Duration
}

// DefaultLockout is the appliance's policy.
var DefaultLockout = Lockout{Failures: 5, GlobalFailures: 50, Window: 15 * time.Minute, LockFor: 5 * time.Minute}

type failRecord struct {
	first  time.Time
	count  int
	locked time.Time // until
}

type limiter struct {
	mu     sync.Mutex
	pol    Lockout
	now    func() time.Time
	byAddr map[string]*failRecord
	global failRecord
}

func newLimiter(pol Lockout, now func() time.Time) *limiter {
	if pol.Failures <= 0 {
		pol = DefaultLockout
	}
	if pol.GlobalFailures <= 0 {
		pol.GlobalFailures = 10 * pol.Failures
	}
	return &limiter{pol: pol, now: now, byAddr: map[string]*failRecord{}}
}

// locked returns how long addr must still wait (0: may try).
func (l *limiter) locked(addr string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	wait := time.Duration(0)
	if r := l.byAddr[addr]; r != nil && now.Before(r.locked) {
		wait = r.locked.Sub(now)
	}
	if now.Before(l.global.locked) && l.global.locked.Sub(now) > wait {
		wait = l.global.locked.Sub(now)
	}
	return wait
}

// fail records a failed attempt.
func (l *limiter) fail(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.byAddr) > 4096 { // bound the table: forget settled records
		for k, r := range l.byAddr {
			if now.Sub(r.first) > l.pol.Window && !now.Before(r.locked) {
				delete(l.byAddr, k)
			}
		}
	}
	r := l.byAddr[addr]
	if r == nil {
		r = &failRecord{}
		l.byAddr[addr] = r
	}
	l.bump(r, l.pol.Failures, now)
	l.bump(&l.global, l.pol.GlobalFailures, now)
}

func (l *limiter) bump(r *failRecord, max int, now time.Time) {
	if now.Sub(r.first) > l.pol.Window {
		r.first, r.count = now, 0
	}
	r.count++
	if r.count >= max {
		r.locked = now.Add(l.pol.LockFor)
		r.first, r.count = now, 0
	}
}

// ok forgets addr's failures after a successful login.
func (l *limiter) ok(addr string) {
	l.mu.Lock()
	delete(l.byAddr, addr)
	l.mu.Unlock()
}
