package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countVerify makes s count its password checks; each waits for release
// (closed by the test) so that parallel attempts overlap for certain.
func countVerify(s *Server, release <-chan struct{}) *atomic.Int32 {
	var n atomic.Int32
	s.verify = func(h Hash, pw string) bool {
		n.Add(1)
		select {
		case <-release:
		case <-time.After(20 * time.Second):
		}
		return h.Verify(pw)
	}
	return &n
}

// postLogin is one login POST from remote, straight into the handler.
func postLogin(s *Server, remote, pw string) *httptest.ResponseRecorder {
	body, _ := json.Marshal(map[string]string{"password": pw})
	r := httptest.NewRequest("POST", "/api/login", strings.NewReader(string(body)))
	r.RemoteAddr = netip.AddrPortFrom(netip.MustParseAddr(remote), 40000).String()
	r.Host = "localhost"
	tok := strings.Repeat("ab", 32)
	r.AddCookie(&http.Cookie{Name: cookieCSRF, Value: tok})
	r.Header.Set(headerCSRF, tok)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

// parallelLogins sends n wrong logins at once (from one source, or from
// n sources when from has a %d), waits until all but the checks in
// flight have answered (or 10 s), then lets the checks finish. It returns
// the status codes.
func parallelLogins(t *testing.T, s *Server, release chan struct{}, n int, from string) map[int]int {
	t.Helper()
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := from
			if strings.Contains(from, "%d") {
				src = fmt.Sprintf(from, i+1)
			}
			codes <- postLogin(s, src, fmt.Sprintf("wrong password %d", i)).Code
		}()
	}
	got := map[int]int{}
	deadline := time.After(10 * time.Second)
	early := 0
wait:
	for early < n-1 {
		select {
		case c := <-codes:
			got[c]++
			early++
		case <-deadline:
			break wait
		}
	}
	close(release)
	wg.Wait()
	close(codes)
	for c := range codes {
		got[c]++
	}
	t.Logf("%d answered while the first checks ran; codes %v", early, got)
	return got
}

// TestParallelWrongLogins: 40 wrong passwords sent at once from one
// address are not 40 PBKDF2 runs. The old code checked the lock before
// the hash and counted the failure after it, so all 40 were checked.
func TestParallelWrongLogins(t *testing.T) {
	pol := DefaultLockout
	s, _ := newServer(t, newFake(), nil, pol)
	release := make(chan struct{})
	checks := countVerify(s, release)
	got := parallelLogins(t, s, release, 40, "127.0.0.1")
	if n := int(checks.Load()); n > pol.Failures {
		t.Errorf("%d of 40 parallel wrong logins were checked, want at most %d (the policy)", n, pol.Failures)
	}
	if got[http.StatusTooManyRequests] < 40-pol.Failures || got[http.StatusTooManyRequests]+got[http.StatusUnauthorized] != 40 {
		t.Errorf("codes %v: want at least %d 429 and the rest 401", got, 40-pol.Failures)
	}
}

// TestGlobalLimitSparesAdmin: 40 wrong logins at once from 40 addresses
// of the management LAN are at most the global limit's number of checks,
// lock logins from the LAN out, and the operator on an administration
// network still logs in. The old code checked all 40 and its global lock
// held every address, the operator's too.
func TestGlobalLimitSparesAdmin(t *testing.T) {
	pol := Lockout{Failures: 5, GlobalFailures: 10, Window: time.Minute, LockFor: time.Minute, MaxChecks: 2}
	h, err := NewHash(testPassword, 1000)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Ctl: newFake(), Lockout: pol,
		OpenTo:    []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
		AdminFrom: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/28")},
		Password:  func() (Hash, bool, error) { return h, true, nil }})
	if err != nil {
		t.Fatal(err)
	}
	s.SetOpenTo([]netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.51.100.0/24")})
	s.SetAdminFrom([]netip.Prefix{netip.MustParsePrefix("198.51.100.0/28")}, true)
	var checks atomic.Int32
	s.verify = func(h Hash, pw string) bool { checks.Add(1); return h.Verify(pw) }
	got := parallelLogins(t, s, make(chan struct{}), 40, "192.0.2.%d")
	if n := int(checks.Load()); n > pol.GlobalFailures {
		t.Errorf("%d of 40 wrong logins from 40 addresses were checked, want at most %d", n, pol.GlobalFailures)
	}
	if got[http.StatusTooManyRequests] < 40-pol.GlobalFailures {
		t.Errorf("codes %v: want at least %d 429", got, 40-pol.GlobalFailures)
	}
	// The LAN is locked out, the right password included ...
	if w := postLogin(s, "192.0.2.200", testPassword); w.Code != http.StatusTooManyRequests || !strings.Contains(w.Body.String(), refusedGlobal) {
		t.Errorf("right password from the LAN during the global lock = %d %s, want 429 %s", w.Code, w.Body, refusedGlobal)
	}
	// ... the administration network is not.
	if w := postLogin(s, "198.51.100.7", testPassword); w.Code != http.StatusOK {
		t.Errorf("right password from web.admin_from during the global lock = %d %s, want 200", w.Code, w.Body)
	}
	// Outside admin_from with ActFromOpenTo off: read-only.
	s.SetAdminFrom([]netip.Prefix{netip.MustParsePrefix("198.51.100.0/28")}, false)
	if w := postLogin(s, "198.51.100.100", testPassword); w.Code != http.StatusForbidden {
		t.Errorf("login from open_to outside admin_from = %d %s, want 403", w.Code, w.Body)
	}
}

// TestLimiterSources: one IPv6 /64 is one source; a right password gives
// back the slot it took.
func TestLimiterSources(t *testing.T) {
	l := newLimiter(Lockout{Failures: 2, GlobalFailures: 3, Window: time.Minute, LockFor: time.Minute, MaxChecks: 4}, time.Now)
	a, b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	t1, _, _ := l.reserve(a, false)
	if t1 == nil {
		t.Fatal("first attempt refused")
	}
	if t2, why, _ := l.reserve(b, false); t2 != nil || why != refusedBusy {
		t.Fatalf("second address of the same /64 while a check runs: %v %q, want refused busy", t2, why)
	}
	t1.done(true)
	for i := range 2 {
		tk, why, _ := l.reserve(netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", i+1)), false)
		if tk == nil {
			t.Fatalf("attempt %d refused: %s", i, why)
		}
		tk.done(false)
	}
	// The right password did not count: two failures so far, one to go.
	tk, why, _ := l.reserve(netip.MustParseAddr("192.0.2.9"), false)
	if tk == nil {
		t.Fatalf("third failure refused (%s): the right password was counted", why)
	}
	tk.done(false)
	if _, why, _ := l.reserve(netip.MustParseAddr("192.0.2.10"), false); why != refusedGlobal {
		t.Errorf("after the global limit: %q, want %q", why, refusedGlobal)
	}
	if tk, why, _ := l.reserve(netip.MustParseAddr("192.0.2.10"), true); tk == nil {
		t.Errorf("an administration address was held by the global lock (%s)", why)
	}
}
