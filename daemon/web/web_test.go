package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/ctl"
)

// fakeCtl is a control server with a few methods that record their calls.
type fakeCtl struct {
	mu      sync.Mutex
	methods map[string]ctl.HandlerFunc
	calls   []string
}

func (f *fakeCtl) Methods() map[string]string {
	out := map[string]string{}
	for k := range f.methods {
		out[k] = ""
	}
	return out
}

func (f *fakeCtl) Call(ctx context.Context, m string, p json.RawMessage) (any, error) {
	f.mu.Lock()
	f.calls = append(f.calls, m+" "+string(p))
	f.mu.Unlock()
	h, ok := f.methods[m]
	if !ok {
		return nil, ctl.Errorf(ctl.CodeBadRequest, "unknown method %q", m)
	}
	return h(ctx, p)
}

func (f *fakeCtl) called(m string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if strings.HasPrefix(c, m+" ") {
			n++
		}
	}
	return n
}

func newFake() *fakeCtl {
	ok := func(v any) ctl.HandlerFunc {
		return func(context.Context, json.RawMessage) (any, error) { return v, nil }
	}
	return &fakeCtl{methods: map[string]ctl.HandlerFunc{
		"status": ok(map[string]any{"node": "edge-t"}),
		"events": ok([]any{}),
		"cores":  ok(map[string]any{"cores": []map[string]any{{"name": "core1", "state": "up"}}}),
		"cores.drain": func(_ context.Context, p json.RawMessage) (any, error) {
			var q struct{ Name string }
			json.Unmarshal(p, &q)
			if q.Name != "core1" {
				return nil, ctl.Errorf(ctl.CodeNotFound, "no Core %q", q.Name)
			}
			return map[string]string{"state": "draining"}, nil
		},
		"vip.auto": func(_ context.Context, p json.RawMessage) (any, error) {
			var q struct{ Group string }
			json.Unmarshal(p, &q)
			if q.Group != "sip" {
				return nil, ctl.Errorf(ctl.CodeNotFound, "no VIP group %q", q.Group)
			}
			return map[string]any{"groups": []map[string]any{{"name": "sip", "state": "master"}}}, nil
		},
	}}
}

const testPassword = "correct horse battery"

type client struct {
	t    *testing.T
	base string
	http *http.Client
	csrf string
}

func newServer(t *testing.T, f *fakeCtl, openTo []netip.Prefix, pol Lockout) (*Server, *client) {
	t.Helper()
	h, err := NewHash(testPassword, 1000)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Ctl: f, OpenTo: openTo, Lockout: pol,
		Password: func() (Hash, bool, error) { return h, true, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	jar, _ := cookiejar.New(nil)
	return s, &client{t: t, base: ts.URL, http: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

func (c *client) do(method, path, body string, hdr map[string]string) (int, map[string]any) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var v map[string]any
	json.Unmarshal(data, &v)
	return resp.StatusCode, v
}

func (c *client) session() {
	c.t.Helper()
	code, v := c.do("GET", "/api/session", "", nil)
	if code != 200 {
		c.t.Fatalf("session: %d", code)
	}
	c.csrf, _ = v["csrf"].(string)
}

func (c *client) login(pw string) int {
	c.t.Helper()
	body, _ := json.Marshal(map[string]string{"password": pw})
	code, v := c.do("POST", "/api/login", string(body), map[string]string{headerCSRF: c.csrf})
	if code == 200 {
		c.csrf = v["csrf"].(string)
	}
	return code
}

func errCode(v map[string]any) string {
	e, _ := v["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func TestActionsNeedLoginAndCSRF(t *testing.T) {
	f := newFake()
	_, c := newServer(t, f, nil, DefaultLockout)
	drain := `{"name":"core1"}`
	// Each action, with params its method accepts.
	acts := []struct{ method, params string }{{"cores.drain", drain}, {"vip.auto", `{"group":"sip"}`}}

	// Reads are open (loopback is allowed when open_to is empty).
	if code, v := c.do("GET", "/api/cores", "", nil); code != 200 || v["cores"] == nil {
		t.Fatalf("GET /api/cores = %d %v", code, v)
	}
	// The page is told which actions this box has.
	if _, v := c.do("GET", "/api/overview", "", nil); fmt.Sprint(v["actions"]) != "[cores.drain vip.auto]" {
		t.Errorf("overview actions = %v, want [cores.drain vip.auto]", v["actions"])
	}
	// No session: refused, and the method never ran.
	for _, a := range acts {
		if code, v := c.do("POST", "/api/action/"+a.method, a.params, map[string]string{headerCSRF: "x"}); code != 401 || errCode(v) != "login_required" {
			t.Fatalf("%s without login = %d %v", a.method, code, v)
		}
	}
	// Login without the CSRF token: refused.
	c.session()
	if code, v := c.do("POST", "/api/login", `{"password":"`+testPassword+`"}`, nil); code != 403 || errCode(v) != "csrf" {
		t.Fatalf("login without CSRF = %d %v", code, v)
	}
	if code := c.login(testPassword); code != 200 {
		t.Fatalf("login = %d", code)
	}
	cases := []struct {
		name   string
		hdr    map[string]string
		want   int
		called int
	}{
		{"no CSRF token", nil, 403, 0},
		{"wrong CSRF token", map[string]string{headerCSRF: strings.Repeat("0", 64)}, 403, 0},
		{"foreign origin", map[string]string{headerCSRF: "$csrf", "Origin": "http://evil.example"}, 403, 0},
		{"good", map[string]string{headerCSRF: "$csrf"}, 200, 1},
	}
	for _, a := range acts {
		for _, tc := range cases {
			hdr := map[string]string{}
			for k, v := range tc.hdr {
				if v == "$csrf" {
					v = c.csrf
				}
				hdr[k] = v
			}
			code, v := c.do("POST", "/api/action/"+a.method, a.params, hdr)
			if code != tc.want {
				t.Errorf("%s, %s: status %d, want %d (%v)", a.method, tc.name, code, tc.want, v)
			}
			if n := f.called(a.method); n != tc.called {
				t.Errorf("%s, %s: ran %d times, want %d", a.method, tc.name, n, tc.called)
			}
		}
	}
	// (vip.auto answers 200 only for the group "sip": the params went through.)
	// A ctl error keeps its meaning; a method the box lacks is 501.
	if code, v := c.do("POST", "/api/action/cores.drain", `{"name":"nope"}`, map[string]string{headerCSRF: c.csrf}); code != 404 || errCode(v) != "not_found" {
		t.Errorf("drain unknown core = %d %v", code, v)
	}
	if code, v := c.do("POST", "/api/action/vip.release", `{"group":"sip"}`, map[string]string{headerCSRF: c.csrf}); code != 501 || errCode(v) != CodeNotAvailable {
		t.Errorf("vip.release on a box without failover = %d %v", code, v)
	}
	if code, _ := c.do("POST", "/api/action/config.reload", `{}`, map[string]string{headerCSRF: c.csrf}); code != 404 {
		t.Errorf("non-action method = %d, want 404", code)
	}
	// Logout ends the session.
	if code, _ := c.do("POST", "/api/logout", "", map[string]string{headerCSRF: c.csrf}); code != 200 {
		t.Fatalf("logout = %d", code)
	}
	if code, _ := c.do("POST", "/api/action/cores.drain", drain, map[string]string{headerCSRF: c.csrf}); code != 401 {
		t.Errorf("action after logout = %d, want 401", code)
	}
}

func TestLockout(t *testing.T) {
	f := newFake()
	pol := Lockout{Failures: 3, GlobalFailures: 100, Window: time.Minute, LockFor: 300 * time.Millisecond}
	_, c := newServer(t, f, nil, pol)
	c.session()
	for i := 0; i < 3; i++ {
		if code := c.login("wrong password " + string(rune('a'+i))); code != 401 {
			t.Fatalf("attempt %d: %d, want 401", i, code)
		}
	}
	// Locked: even the right password is refused, with Retry-After.
	if code := c.login(testPassword); code != 429 {
		t.Fatalf("login while locked out = %d, want 429", code)
	}
	time.Sleep(400 * time.Millisecond)
	if code := c.login(testPassword); code != 200 {
		t.Fatalf("login after the lockout = %d, want 200", code)
	}
}

func TestClosedOutsideOpenTo(t *testing.T) {
	f := newFake()
	_, c := newServer(t, f, []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, DefaultLockout)
	for _, p := range []string{"/", "/api/status", "/api/overview", "/api/session", "/static/app.js"} {
		if code, _ := c.do("GET", p, "", nil); code != 403 {
			t.Errorf("GET %s from 127.0.0.1 = %d, want 403", p, code)
		}
	}
	if code, _ := c.do("POST", "/api/login", `{"password":"`+testPassword+`"}`, nil); code != 403 {
		t.Errorf("login from outside = %d, want 403", code)
	}
	if n := f.called("status"); n != 0 {
		t.Errorf("status ran %d times for a refused client", n)
	}
}

func TestOpenToMatching(t *testing.T) {
	s, err := New(Options{Ctl: newFake(), OpenTo: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		remote string
		want   bool
	}{
		{"192.0.2.7:4000", true},
		{"[::ffff:192.0.2.7]:4000", true},
		{"198.51.100.7:4000", false},
		{"127.0.0.1:4000", false},
		{"garbage", false},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		if got := s.allowed(r); got != tc.want {
			t.Errorf("allowed(%s) = %v, want %v", tc.remote, got, tc.want)
		}
	}
}

func TestPasswordHash(t *testing.T) {
	h, err := NewHash(testPassword, 1000)
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := NewHash(testPassword, 1000)
	if string(h.Salt) == string(h2.Salt) || string(h.Sum) == string(h2.Sum) {
		t.Error("two hashes of one password are equal: no salt")
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{{testPassword, true}, {testPassword + " ", false}, {"", false}, {"correct horse batterY", false}} {
		if got := h.Verify(tc.pw); got != tc.want {
			t.Errorf("Verify(%q) = %v, want %v", tc.pw, got, tc.want)
		}
	}
	if _, err := NewHash("short", 0); err == nil {
		t.Error("a 5-character password was accepted")
	}
	data, _ := json.Marshal(h)
	if strings.Contains(string(data), "horse") {
		t.Error("stored hash contains the password")
	}
}
