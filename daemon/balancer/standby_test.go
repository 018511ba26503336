package balancer

import (
	"net/netip"
	"testing"
	"time"
)

func newStandbyPair(t *testing.T) (active, standby *Balancer, obs *recDialogs) {
	t.Helper()
	cores := []CoreConfig{{Name: "core1", Address: "198.51.100.21:5060", MaxCalls: 10}, {Name: "core2", Address: "198.51.100.22:5060"}}
	obs = &recDialogs{}
	var err error
	active, err = New(Options{Listen: []string{"udp:192.0.2.10:5060"}, Cores: cores, Dialogs: obs})
	if err != nil {
		t.Fatal(err)
	}
	standby, err = New(Options{Listen: []string{"udp:192.0.2.10:5060"}, Cores: cores[:1]})
	if err != nil {
		t.Fatal(err)
	}
	standby.SetStandby(true)
	return active, standby, obs
}

func counts(b *Balancer) map[string][2]int64 {
	m := map[string][2]int64{}
	for _, c := range b.Cores() {
		m[c.Name] = [2]int64{c.Calls, c.Pending}
	}
	return m
}

// TestMirrorSnapshotThenEvents replays the active box's events over a
// snapshot taken in the middle of them (as a reconnect does): the
// standby ends with the same table and counts whatever the overlap.
func TestMirrorSnapshotThenEvents(t *testing.T) {
	for cut := 0; cut <= 7; cut++ {
		act, sb, _ := newStandbyPair(t)
		var evs []DialogEvent
		act.dialogs.obs = observerFunc(func(e DialogEvent) { evs = append(evs, e) })
		c1, c2 := act.pool.get("core1"), act.pool.get("core2")
		steps := []func(){
			func() { act.dialogs.create("a", "ft", c1) },
			func() { act.dialogs.create("b", "ft", c1) },
			func() { act.dialogs.create("b", "ft", c2) }, // failover before the answer
			func() { act.dialogs.confirm("a", 0, dialogTarget{calleeTag: "tt"}) },
			func() { act.dialogs.confirm("b", 90*time.Second, dialogTarget{calleeTag: "tt"}) },
			func() { act.dialogs.create("c", "ft", c2) },
			func() { act.dialogs.end("a", "bye") },
		}
		var snap []DialogRecord
		var cores []CoreRecord
		for i, s := range steps {
			if i == cut {
				snap, cores = act.ExportDialogs(), act.ExportCores()
			}
			s()
		}
		if cut == len(steps) {
			snap, cores = act.ExportDialogs(), act.ExportCores()
		}
		if _, err := sb.ApplyCores(cores); err != nil {
			t.Fatal(err)
		}
		if n := sb.ReplaceDialogs(snap); n != 0 {
			t.Fatalf("cut %d: %d unknown cores", cut, n)
		}
		for _, e := range evs { // every event since before the snapshot
			if !sb.ApplyDialog(e) {
				t.Fatalf("cut %d: event %+v refused", cut, e)
			}
		}
		if got, want := counts(sb), counts(act); len(got) != 2 || got["core1"] != want["core1"] || got["core2"] != want["core2"] {
			t.Errorf("cut %d: standby counts %v, active %v", cut, got, want)
		}
		if sb.Dialogs() != act.Dialogs() || sb.dialogs.coreOf("b") != sb.pool.get("core2") {
			t.Errorf("cut %d: standby has %d dialogs (b on %v), active %d", cut, sb.Dialogs(), sb.dialogs.coreOf("b"), act.Dialogs())
		}
		d, _ := sb.dialogs.m.get("b")
		if d == nil || !d.confirmed || d.session != 90*time.Second {
			t.Errorf("cut %d: mirrored dialog b = %+v, want confirmed with its 90 s session", cut, d)
		}
	}
}

type observerFunc func(DialogEvent)

func (f observerFunc) DialogEvent(e DialogEvent) { f(e) }

func TestApplyCoresAndStandby(t *testing.T) {
	act, sb, _ := newStandbyPair(t)
	if err := act.DrainCore("core1"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		act.probeResult(act.pool.get("core2"), false, 0, 0, "x")
	}
	if _, err := sb.ApplyCores(act.ExportCores()); err != nil {
		t.Fatal(err)
	}
	st := map[string]State{}
	for _, c := range sb.Cores() {
		st[c.Name] = c.State
	}
	if st["core1"] != StateDraining || st["core2"] != StateInactive || len(st) != 2 {
		t.Errorf("standby pool %v, want core1 draining, core2 inactive", st)
	}
	// The active box removes core2: so does the mirror.
	act.RemoveCore("core2")
	if n, _ := sb.ApplyCores(act.ExportCores()); n != 1 || len(sb.Cores()) != 1 {
		t.Errorf("after removal: %d changes, %d cores", n, len(sb.Cores()))
	}

	// A stale mirrored expiry is renewed when the standby takes over.
	sb.ApplyDialog(DialogEvent{Kind: DialogConfirm, CallID: "y", Core: "core1", At: time.Now().Add(-3 * time.Hour), Expires: time.Now().Add(-time.Hour)})
	sb.SetStandby(false)
	if d, ok := sb.dialogs.m.get("y"); !ok || time.Until(d.expires) < time.Hour {
		t.Errorf("after leaving standby dialog y expires in %v, want a fresh lifetime", time.Until(d.expires))
	}
	if sb.ApplyDialog(DialogEvent{Kind: DialogCreate, CallID: "z", Core: "nosuch"}) {
		t.Error("an event naming an unknown Core was applied")
	}
}

// TestMirrorDialogIdentity: the tags and the next hop travel in the
// events and the snapshot, so that the standby checks an untrusted
// caller's requests as the active box did; a record from a peer on the
// previous release (no tags) matches on its Call-ID, toward its Core.
func TestMirrorDialogIdentity(t *testing.T) {
	act, sb, _ := newStandbyPair(t)
	var evs []DialogEvent
	act.dialogs.obs = observerFunc(func(e DialogEvent) { evs = append(evs, e) })
	c1 := act.pool.get("core1")
	act.dialogs.create("id-1", "caller", c1)
	act.dialogs.confirm("id-1", 0, act.targetOf([]byte("SIP/2.0 200 OK\r\nRecord-Route: <sip:198.51.100.30:5060;lr>, <sip:192.0.2.10:5060;lr>\r\n"+
		"To: <sip:b@x>;tag=callee\r\nContact: <sip:core@198.51.100.21>\r\n\r\n")))
	if len(evs) != 2 || evs[0].CallerTag != "caller" || evs[1].CalleeTag != "callee" || evs[1].NextHop != "sip:198.51.100.30:5060;lr" {
		t.Fatalf("events %+v: want the caller's tag on create, both tags and the Record-Route above ours on confirm", evs)
	}
	want := netip.MustParseAddrPort("198.51.100.30:5060")
	check := func(b *Balancer, how string) {
		t.Helper()
		if m := b.dialogs.match([]byte("id-1"), []byte("caller"), []byte("callee")); m.side != sideCaller || m.dst != want {
			t.Errorf("%s: %+v, want the caller's side toward %v", how, m, want)
		}
		if m := b.dialogs.match([]byte("id-1"), []byte("guess"), []byte("callee")); m.side != sideNone {
			t.Errorf("%s: a guessed tag matched", how)
		}
	}
	for _, e := range evs {
		sb.ApplyDialog(e)
	}
	check(sb, "events")
	_, sb2, _ := newStandbyPair(t)
	sb2.ReplaceDialogs(act.ExportDialogs())
	check(sb2, "snapshot")

	old := DialogRecord{CallID: "old-1", Core: "core1", Confirmed: true, Created: time.Now(), Expires: time.Now().Add(time.Hour)}
	sb2.ReplaceDialogs([]DialogRecord{old})
	if m := sb2.dialogs.match([]byte("old-1"), []byte("any"), []byte("thing")); m.side != sideCaller || m.dst != c1.addr {
		t.Errorf("a record of the previous release: %+v, want a match on the Call-ID toward core1", m)
	}
}
