package console

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Control methods of the console's login (the daemon registers them).
const (
	// MethodSession tells the console whether to ask for a password:
	// SessionInfo.
	MethodSession = "console.session"
	// MethodLogin checks the password: {password} -> LoginResult.
	MethodLogin = "console.login"
	// methodWeb is the web server's own state (`ctl web`); the console
	// shows its tls_fingerprint on the banner when the box has one.
	methodWeb = "web"
)

// Lockout policy: after LockAfter wrong passwords in a row the console
// login is locked for LockFor; each further failure locks it again for
// twice as long, up to LockMax. A right password resets it.
const (
	LockAfter = 3
	LockFor   = 30 * time.Second
	LockMax   = 5 * time.Minute
)

// SessionInfo is what MethodSession answers.
type SessionInfo struct {
	// LoginRequired: console.login is on.
	LoginRequired bool `json:"login_required"`
	// PasswordSet: a password exists; if not, the console has one
	// chosen before the menu.
	PasswordSet bool `json:"password_set"`
	// LockedSeconds is how long logins stay refused (0: not locked).
	LockedSeconds float64 `json:"locked_seconds"`
	// IdleLogoutSeconds ends a session after this long without a key.
	IdleLogoutSeconds float64 `json:"idle_logout_seconds"`
}

// LoginResult is what MethodLogin answers.
type LoginResult struct {
	OK bool `json:"ok"`
	// LockedSeconds: the login is (now) locked for this long.
	LockedSeconds float64 `json:"locked_seconds,omitempty"`
	// Failures in a row so far.
	Failures int `json:"failures,omitempty"`
}

// Errors of Gate.Begin.
var (
	ErrLocked = errors.New("console login locked")
	ErrBusy   = errors.New("a console login is being checked")
)

// Gate limits password checks of the console login: one at a time, the
// failure counted before the (slow) hash is checked, and a lockout after
// LockAfter failures in a row. The daemon keeps one, so that restarting
// the console process does not reset it.
type Gate struct {
	mu          sync.Mutex
	now         func() time.Time
	failures    int
	lockedUntil time.Time
	inFlight    bool
}

// NewGate returns a Gate reading the time from now (time.Now if nil).
func NewGate(now func() time.Time) *Gate {
	if now == nil {
		now = time.Now
	}
	return &Gate{now: now}
}

// Locked returns how long logins stay refused.
func (g *Gate) Locked() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return max(g.lockedUntil.Sub(g.now()), 0)
}

// Begin starts one check: it fails while locked or while another check
// runs; else the attempt counts as a failure until Done(true).
func (g *Gate) Begin() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if left := g.lockedUntil.Sub(g.now()); left > 0 {
		return fmt.Errorf("%w for %v", ErrLocked, left.Round(time.Second))
	}
	if g.inFlight {
		return ErrBusy
	}
	g.inFlight = true
	g.failures++
	return nil
}

// Done ends the check Begin started; it returns the failures in a row
// and the lockout that starts now (0: none).
func (g *Gate) Done(ok bool) (failures int, locked time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inFlight = false
	if ok {
		g.failures = 0
		return 0, 0
	}
	if g.failures >= LockAfter {
		locked = LockFor << min(g.failures-LockAfter, 10)
		locked = min(locked, LockMax)
		g.lockedUntil = g.now().Add(locked)
	}
	return g.failures, locked
}

// Reset forgets the failures and any lockout (a recovered password).
func (g *Gate) Reset() {
	g.mu.Lock()
	g.failures, g.lockedUntil = 0, time.Time{}
	g.mu.Unlock()
}
