package balancer

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestRoom: a table's cap keeps its last tenth for trusted sources.
func TestRoom(t *testing.T) {
	for _, tt := range []struct {
		n       int64
		limit   int
		trusted bool
		want    bool
	}{
		{0, 1000, false, true},
		{899, 1000, false, true},
		{900, 1000, false, false}, // nine tenths: strangers stop
		{900, 1000, true, true},   // the reserve
		{999, 1000, true, true},
		{1000, 1000, true, false}, // the cap itself
	} {
		if got := room(tt.n, tt.limit, tt.trusted); got != tt.want {
			t.Errorf("room(%d, %d, trusted %v) = %v, want %v", tt.n, tt.limit, tt.trusted, got, tt.want)
		}
	}
}

// TestSessionExpiresClamped: a Session-Expires of any size keeps a
// dialog no longer than the clamp (plus 32 s), from a 2xx and from the
// peer's records alike.
func TestSessionExpiresClamped(t *testing.T) {
	a, _ := newCore(cc("a", 1, 0))
	d := newDialogTable(nil, time.Hour, time.Minute, nil)
	d.maxSession = 2 * time.Hour
	d.create("huge", "ft", a)
	d.confirm("huge", 100000*time.Hour, dialogTarget{calleeTag: "tt"})
	now := time.Now()
	if n := d.expire(now.Add(2*time.Hour + 31*time.Second)); n != 0 {
		t.Fatalf("expired %d before the clamp", n)
	}
	if n := d.expire(now.Add(2*time.Hour + 33*time.Second)); n != 1 {
		t.Fatalf("a Session-Expires of 100,000 h kept the dialog past the 2 h clamp + 32 s (%d expired)", n)
	}
	if got := d.clampSession(100000 * time.Hour); got != 2*time.Hour {
		t.Errorf("clampSession = %v", got)
	}
}

// TestDialogSides: a dialog names its caller's side by both tags, the
// callee's side by the same tags the other way round; a BYE ends it
// only when its tags name it.
func TestDialogSides(t *testing.T) {
	a, _ := newCore(cc("a", 1, 0))
	d := newDialogTable(nil, time.Hour, time.Minute, nil)
	d.create("c", "caller", a)
	if m := d.match([]byte("c"), []byte("caller"), []byte("any")); m.side != sideCaller || m.dst != a.addr {
		t.Errorf("early dialog, caller's tag: %+v, want the caller's side toward its Core", m)
	}
	d.confirm("c", 0, dialogTarget{calleeTag: "callee", nextHop: "sip:198.51.100.7:5070", tp: "udp", addr: netip.MustParseAddrPort("198.51.100.7:5070")})
	for _, tt := range []struct {
		from, to string
		want     dialogSide
	}{
		{"caller", "callee", sideCaller},
		{"callee", "caller", sideCallee},
		{"caller", "guess", sideNone},
		{"guess", "callee", sideNone},
		{"callee", "callee", sideNone},
	} {
		if m := d.match([]byte("c"), []byte(tt.from), []byte(tt.to)); m.side != tt.want {
			t.Errorf("From tag %s, To tag %s: side %d, want %d", tt.from, tt.to, m.side, tt.want)
		}
	}
	if m := d.match([]byte("c"), []byte("caller"), []byte("callee")); m.dst != netip.MustParseAddrPort("198.51.100.7:5070") || !m.allows("udp", m.dst, "") || m.allows("tcp", m.dst, "") {
		t.Errorf("next hop %+v, want the recorded 198.51.100.7:5070 over UDP only", m)
	}
	d.endBye("c", []byte("caller"), []byte("guess"))
	if d.coreOf("c") == nil {
		t.Fatal("a BYE with a guessed To tag ended the dialog")
	}
	d.endBye("c", []byte("callee"), []byte("caller"))
	if d.coreOf("c") != nil {
		t.Fatal("the callee's BYE did not end the dialog")
	}
}

// TestCapMetrics: the caps, the refusals at them and the relay's
// refusals are exported beside the tables' gauges.
func TestCapMetrics(t *testing.T) {
	b, err := New(Options{Listen: []string{"udp:192.0.2.10:5060"}, MaxDialogs: 1000})
	if err != nil {
		t.Fatal(err)
	}
	b.stats.AtCap[capDialogs].Add(3)
	b.stats.Refused[refusedNextHop].Add(2)
	got := collected(t, b)
	for k, want := range map[string]float64{
		`sipedge_sip_table_cap{table="dialogs"}`:             1000,
		`sipedge_sip_table_cap{table="transactions"}`:        200000,
		`sipedge_sip_table_cap{table="branches"}`:            200000,
		`sipedge_sip_at_cap_total{table="dialogs"}`:          3,
		`sipedge_sip_relay_refused_total{reason="next_hop"}`: 2,
		`sipedge_sip_relay_refused_total{reason="route"}`:    0,
		`sipedge_sip_dialogs`:                                0,
		`sipedge_sip_transactions{side="server"}`:            0,
	} {
		if v, ok := got[k]; !ok || v != want {
			t.Errorf("%s = %v (exported: %v), want %v", k, v, ok, want)
		}
	}
}

// TestDialogCapUnderConcurrentCalls: workers admitting new calls at
// once never take the dialog table past its cap (the check and the
// entry are one step): 16 goroutines offer 50 calls each to a table
// whose untrusted share is 90.
func TestDialogCapUnderConcurrentCalls(t *testing.T) {
	b, err := New(Options{
		Listen:     []string{"udp:127.0.0.1:0"},
		Cores:      []CoreConfig{{Name: "a", Address: "127.0.0.1:9", Weight: 1}},
		MaxDialogs: 100,
	})
	if err != nil {
		t.Fatal(err)
	}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < 50; i++ {
				st := &serverTx{method: sip.INVITE, callID: fmt.Sprintf("cap-%d-%d", g, i), callerTag: "f"}
				if c, _ := b.admitNew(st); c != nil {
					admitted.Add(1)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	if n := b.dialogs.m.n.Load(); n != 90 || admitted.Load() != 90 {
		t.Errorf("%d dialogs, %d calls admitted; want the untrusted share of the cap, 90", n, admitted.Load())
	}
	if got := b.stats.AtCap[capDialogs].Load(); got != 16*50-90 {
		t.Errorf("%d refusals counted at the dialog cap, want %d", got, 16*50-90)
	}
}
