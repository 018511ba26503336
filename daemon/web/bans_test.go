package web

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/sipedge/sipedge/daemon/ctl"
)

// TestBans: /api/bans is the JSON twin of `ctl bans` (readable without
// login); clearing a ban is an action behind login and CSRF.
func TestBans(t *testing.T) {
	f := newFake()
	bans := []map[string]any{{"source": "203.0.113.9", "reason": "flood"}}
	f.methods["bans"] = func(context.Context, json.RawMessage) (any, error) {
		return map[string]any{"bans": bans, "counts": map[string]int{"dropped_banned": 7}}, nil
	}
	f.methods["bans.clear"] = func(_ context.Context, p json.RawMessage) (any, error) {
		var q struct{ Source string }
		json.Unmarshal(p, &q)
		if q.Source != "203.0.113.9" {
			return nil, ctl.Errorf(ctl.CodeNotFound, "%s is not banned", q.Source)
		}
		bans = []map[string]any{}
		return map[string]any{"cleared": 1}, nil
	}
	_, c := newServer(t, f, nil, Lockout{})
	code, v := c.do("GET", "/api/bans", "", nil)
	if code != 200 || len(v["bans"].([]any)) != 1 {
		t.Fatalf("/api/bans: %d %v", code, v)
	}
	code, v = c.do("GET", "/api/overview", "", nil)
	if code != 200 || v["bans"].(map[string]any)["available"] != true {
		t.Fatalf("overview bans: %d %v", code, v["bans"])
	}
	c.session()
	if code, _ := c.do("POST", "/api/action/bans.clear", `{"source":"203.0.113.9"}`, map[string]string{headerCSRF: c.csrf}); code != 401 {
		t.Fatalf("clear without login: %d, want 401", code)
	}
	if f.called("bans.clear") != 0 {
		t.Fatal("bans.clear called without login")
	}
	if code := c.login(testPassword); code != 200 {
		t.Fatalf("login: %d", code)
	}
	if code, v := c.do("POST", "/api/action/bans.clear", `{"source":"198.51.100.1"}`, map[string]string{headerCSRF: c.csrf}); code != 404 {
		t.Errorf("clear of a source not banned: %d %v", code, v)
	}
	if code, v := c.do("POST", "/api/action/bans.clear", `{"source":"203.0.113.9"}`, map[string]string{headerCSRF: c.csrf}); code != 200 {
		t.Fatalf("clear: %d %v", code, v)
	}
	if _, v := c.do("GET", "/api/bans", "", nil); len(v["bans"].([]any)) != 0 {
		t.Errorf("after clear: %v", v)
	}
}
