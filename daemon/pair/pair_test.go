package pair

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/failover"
)

// TestEncodeFits: a pool too large for a heartbeat is cut from the end,
// and the cut is counted; what is sent decodes back.
func TestEncodeFits(t *testing.T) {
	s := Summary{Version: "v1.2.3", Kind: "edge", CoresTotal: 200}
	for i := range 200 {
		s.Cores = append(s.Cores, Core{Name: fmt.Sprintf("core-with-a-long-name-%03d", i), State: "active", Calls: 1500, LatencyMS: 1.25})
	}
	b, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MaxBytes {
		t.Fatalf("%d bytes, above %d", len(b), MaxBytes)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Omitted == 0 || got.Omitted+len(got.Cores) != 200 || got.CoresTotal != 200 {
		t.Errorf("%d Cores sent, %d omitted, total %d", len(got.Cores), got.Omitted, got.CoresTotal)
	}
	if _, err := Decode(make([]byte, MaxBytes+1)); err == nil {
		t.Error("an oversized summary decoded")
	}
	if _, err := Decode([]byte("{not json")); err == nil {
		t.Error("junk decoded")
	}
}

// TestViewText: both boxes side by side, the peer's summary decoded, and
// an unreachable peer says since when.
func TestViewText(t *testing.T) {
	now := time.Date(2026, 12, 3, 4, 0, 0, 0, time.UTC)
	st := failover.Status{Node: "edge-b", Groups: []failover.GroupInfo{{Name: "sip", Role: "backup", State: "master", Holder: "edge-b"}}}
	lost := now.Add(-90 * time.Second)
	peerSum, _ := Encode(Summary{Version: "v9", Kind: "edge", Calls: 7, CoresUp: 1, CoresTotal: 2})
	peers := []failover.PairPeer{{Node: "edge-a", LastHeard: lost, Ago: 90 * time.Second, UnreachableSince: &lost,
		Groups: []failover.PairGroup{{Name: "sip", State: "backup", Main: true}}, Summary: peerSum}}
	v := Build(Summary{Version: "v10", Kind: "edge", Calls: 42, CoresUp: 2, CoresTotal: 2, Replica: "active", Connected: true, LagMS: 0.5}, st, peers)
	if len(v.Boxes) != 2 || !v.Boxes[0].Self || v.Boxes[1].Summary == nil || v.Boxes[1].Summary.Version != "v9" || v.Boxes[1].Reachable {
		t.Fatalf("view %+v", v)
	}
	out := Text(v, now, 100)
	for _, want := range []string{
		"edge-b (this)", "edge-a (peer)", "UNREACHABLE since 03:58:30Z (1m30s ago)",
		"v10", "v9", "master, holder edge-b", "backup, holder edge-b", "2 of 2 up", "1 of 2 up",
		"active, lag 0.5 ms", "1m30s ago",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if len(l) > 100 {
			t.Errorf("line of %d characters: %q", len(l), l)
		}
	}
	// A peer of an earlier release: no summary, still its groups.
	peers[0].Summary, peers[0].UnreachableSince, peers[0].Ago = nil, nil, time.Second
	peers[0].Alive = true
	out = Text(Build(Summary{Version: "v10"}, st, peers), now, 80)
	if !strings.Contains(out, "earlier release") || strings.Contains(out, "UNREACHABLE") {
		t.Errorf("earlier release peer:\n%s", out)
	}
}

// TestCompact: the banner's form fits 79 columns in 8 rows.
func TestCompact(t *testing.T) {
	now := time.Date(2026, 12, 3, 4, 0, 0, 0, time.UTC)
	st := failover.Status{Node: "edge-b", Groups: []failover.GroupInfo{{Name: "sip", Role: "backup", State: "master", Holder: "edge-b"}}}
	lost := now.Add(-90 * time.Second)
	peers := []failover.PairPeer{{Node: "edge-a", LastHeard: lost, Ago: 90 * time.Second, UnreachableSince: &lost,
		Groups: []failover.PairGroup{{Name: "sip", State: "backup", Main: true}}}}
	out := Compact(Build(Summary{Version: "v10", Kind: "edge", Calls: 42, CoresUp: 2, CoresTotal: 2}, st, peers), now, 79)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) > 8 {
		t.Errorf("%d rows:\n%s", len(lines), out)
	}
	for _, l := range lines {
		if len(l) > 79 {
			t.Errorf("line of %d characters: %q", len(l), l)
		}
	}
	for _, want := range []string{"backup, v10", "main, earlier release", "42, Cores 2 of 2 up", "UNREACHABLE since 03:58:30Z"} {
		if !strings.Contains(out, want) {
			t.Errorf("compact lacks %q:\n%s", want, out)
		}
	}
}

// TestPeerTextIsPrintable: what the peer sends reaches the console and
// ctl as printable text only (no terminal escape sequences), bounded.
func TestPeerTextIsPrintable(t *testing.T) {
	b, _ := Encode(Summary{Version: "v1\x1b[2J\x1b]0;owned\x07", Kind: "edge", Cores: []Core{{Name: "c\r\n1", State: strings.Repeat("x", 200)}}})
	s, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != "v1?[2J?]0;owned?" || s.Cores[0].Name != "c??1" || len(s.Cores[0].State) != 64 {
		t.Errorf("decoded %q %q %d", s.Version, s.Cores[0].Name, len(s.Cores[0].State))
	}
	v := Build(Summary{}, failover.Status{Node: "a"}, []failover.PairPeer{{Node: "b\x1b[1m", Groups: []failover.PairGroup{{Name: "g\x1b", State: "backup"}}}})
	if out := Text(v, time.Now(), 100); strings.ContainsAny(out, "\x1b\r\a") {
		t.Errorf("control characters in the text: %q", out)
	}
}
