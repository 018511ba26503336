package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/failover"
)

func TestFormatVIP(t *testing.T) {
	in := 180 * time.Millisecond
	st := failover.Status{Node: "edge-b", Rejected: map[string]uint64{"bad_mac": 3}, Groups: []failover.GroupInfo{{
		Name: "sip", Address: "192.0.2.10/24", Interface: "bond0", Role: "backup", State: "backup",
		Since: time.Now().Add(-time.Minute), Reason: "heard peer edge-a", Priority: 100, Effective: 80,
		Holder: "edge-a", TakeoverIn: &in,
		Peers:  []failover.PeerInfo{{Node: "edge-a", State: "master", Priority: 150, LastHeard: 120 * time.Millisecond, Alive: true}},
		Checks: []failover.CheckInfo{{Check: "sip_options:127.0.0.1:5060", OK: false, Weight: 20, Error: "answered 503"}},
	}}}
	out := FormatVIP(st)
	for _, want := range []string{"BACKUP", "edge-a", "120ms ago", "in 180ms", "80/100", "peer edge-a: master, priority 150", "check sip_options:127.0.0.1:5060 [-20]: FAIL answered 503", "bad_mac 3"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	pinAt := time.Now().Add(-90 * time.Second)
	for _, tc := range []struct {
		name string
		g    failover.GroupInfo
		want []string
		not  []string
	}{
		{"released", failover.GroupInfo{Name: "db", State: "backup", Held: true, PinSince: &pinAt}, []string{"BACKUP (released by operator)", "pin: released by operator at ", "(1m30s ago)", "ctl vip auto db"}, nil},
		{"takeover", failover.GroupInfo{Name: "db", State: "master", Pinned: true, PinSince: &pinAt, Relaying: false}, []string{"MASTER (taken over by operator)", "pin: taken over by operator"}, []string{"relaying"}},
		{"relaying", failover.GroupInfo{Name: "db", State: "backup", Relaying: true}, []string{"relaying: packets"}, []string{"pin:"}},
	} {
		out := FormatVIP(failover.Status{Node: "edge-a", Groups: []failover.GroupInfo{tc.g}})
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q:\n%s", tc.name, w, out)
			}
		}
		for _, w := range tc.not {
			if strings.Contains(out, w) {
				t.Errorf("%s: output has %q:\n%s", tc.name, w, out)
			}
		}
	}
	if out := FormatVIP(failover.Status{}); !strings.Contains(out, "no VIP groups") {
		t.Errorf("empty: %q", out)
	}
}
