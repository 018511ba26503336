package web

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/replica"
)

// TestReplicaInOverview: on a box with replication the JSON the page
// polls carries the hot-standby state under "replica" (with the keys
// the page renders), and /api/replica is its twin; on a box without it
// the part is unavailable (the page hides the section).
func TestReplicaInOverview(t *testing.T) {
	since := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	ago := replica.Duration(250 * time.Millisecond)
	st := replica.Status{Role: "standby", Listen: "192.0.2.12:695", Peer: "192.0.2.11:695", Connected: true,
		PeerNode: "edge-a", Since: &since, LagMS: 1.5, Dialogs: 42, LastFrameAgo: &ago}

	f := newFake()
	_, c := newServer(t, f, nil, Lockout{})
	if code, v := c.do("GET", "/api/overview", "", nil); code != 200 || !hasPart(v, "replica", false) {
		t.Fatalf("overview without replication: %d %v", code, v["replica"])
	}
	if code, v := c.do("GET", "/api/replica", "", nil); code != 501 || errCode(v) != CodeNotAvailable {
		t.Errorf("/api/replica without replication: %d %v", code, v)
	}

	f.methods[MethodReplica] = func(context.Context, json.RawMessage) (any, error) { return st, nil }
	code, v := c.do("GET", "/api/overview", "", nil)
	p, _ := v["replica"].(map[string]any)
	if code != 200 || !hasPart(v, "replica", true) {
		t.Fatalf("overview with replication: %d %v", code, v["replica"])
	}
	got, _ := p["result"].(map[string]any)
	for k, want := range map[string]any{
		"role": "standby", "connected": true, "peer_node": "edge-a", "peer": "192.0.2.11:695",
		"lag_ms": 1.5, "dialogs": 42.0, "events_pending": 0.0, "since": "2025-01-02T03:04:05Z", "last_frame_ago": "250ms",
	} {
		if got[k] != want {
			t.Errorf("overview replica %s = %v, want %v (%v)", k, got[k], want, got)
		}
	}
	if code, v := c.do("GET", "/api/replica", "", nil); code != 200 || v["role"] != "standby" || v["dialogs"] != 42.0 {
		t.Errorf("/api/replica: %d %v", code, v)
	}
	if _, v := c.do("GET", "/api/", "", nil); !strings.Contains(fmt.Sprint(v["views"]), "/api/replica:") {
		t.Errorf("/api/ does not list /api/replica: %v", v["views"])
	}
}

// hasPart reports whether the overview v has the part name with
// available set as given.
func hasPart(v map[string]any, name string, available bool) bool {
	p, ok := v[name].(map[string]any)
	return ok && p["available"] == available
}
