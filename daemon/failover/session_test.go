package failover

import (
	"testing"
	"time"
)

// wallClock is a box's wall clock in the simulation: the simulation's
// clock plus an offset the test sets or steps (a real clock step leaves
// Go's monotonic readings, which drive the timers, alone).
type wallClock struct {
	base *fakeClock
	off  time.Duration
}

func (c *wallClock) Now() time.Time { return c.base.now.Add(c.off) }

// clockPair is pair with each box's wall clock under the test's control.
func clockPair(t *testing.T, offA, offB time.Duration) (*sim, *simNode, *simNode, *wallClock, *wallClock) {
	var wa, wb *wallClock
	s, a, b := pairOpts(t, nil, func(a, b *Options) {
		clk := a.Clock.(*fakeClock)
		wa, wb = &wallClock{base: clk, off: offA}, &wallClock{base: clk, off: offB}
		a.WallClock, b.WallClock = wa, wb
	})
	return s, a, b, wa, wb
}

// noRejections fails if n rejected a heartbeat of its peer as stale or
// replayed (a valid heartbeat is never one of those).
func noRejections(t *testing.T, nodes ...*simNode) {
	t.Helper()
	for _, n := range nodes {
		r := n.m.Status().Rejected
		if r[RejectStale]+r[RejectReplayed]+r[RejectBadMAC]+r[RejectMalformed] != 0 {
			t.Errorf("%s rejected valid heartbeats: %v", n.name, r)
		}
	}
}

// TestClockHoursOff: A's wall clock is 5 hours ahead of B's. Boot,
// takeover after a kill, failback: one holder throughout (the
// simulation checks every tick), no heartbeat rejected. On the previous
// release B rejected every heartbeat of A as stale (30 s window) and
// both took the VIP.
func TestClockHoursOff(t *testing.T) {
	for _, off := range []time.Duration{5 * time.Hour, -5 * time.Hour} {
		t.Run(off.String(), func(t *testing.T) {
			s, a, b, _, _ := clockPair(t, off, 0)
			s.run(3 * time.Second)
			s.wantHolders("edge-a")
			s.kill(a, false)
			if _, ok := s.until(time.Second, func() bool { return b.state("sip") == StateMaster }); !ok {
				t.Fatal("B did not take over")
			}
			s.boot(a)
			if _, ok := s.until(3*time.Second, func() bool { return a.state("sip") == StateMaster }); !ok {
				t.Fatal("no failback")
			}
			s.run(time.Second)
			s.wantHolders("edge-a")
			noRejections(t, a, b)
			if k := b.m.Status().Groups[0].Peers[0].Session; k != SessionProven {
				t.Errorf("B's peer session %q, want %q", k, SessionProven)
			}
		})
	}
}

// TestClockStepsBackward: the holder's wall clock steps back an hour
// (an RTC reset, a bad NTP answer), then forward two, then it restarts
// with the clock still stepped back: its heartbeats keep being accepted
// and the VIP stays where it is. On the previous release the backward
// step made A's heartbeats stale and, after a restart, replayed
// (sequence from the wall clock).
func TestClockStepsBackward(t *testing.T) {
	s, a, b, wa, wb := clockPair(t, 0, 0)
	for _, step := range []time.Duration{-time.Hour, 2 * time.Hour, -3 * time.Hour} {
		wa.off += step
		s.run(2 * time.Second)
		s.wantHolders("edge-a")
		s.wantState(b, "sip", StateBackup)
	}
	// The receiver's clock steps too.
	wb.off -= 24 * time.Hour
	s.run(2 * time.Second)
	s.wantHolders("edge-a")
	// A restarts (instantly) with its clock an hour behind the sequence
	// it used before.
	s.kill(a, false)
	s.boot(a)
	s.run(3 * time.Second)
	s.wantHolders("edge-a")
	s.wantState(b, "sip", StateBackup)
	noRejections(t, a, b)
}

// TestRestartedReceiverRejectsReplay: heartbeats recorded before B
// restarted (here A's "stopped" from a clean stop) are not accepted by
// the restarted B, even at once, before A's real ones arrive. The
// previous release accepted any of them within its 30 s window.
func TestRestartedReceiverRejectsReplay(t *testing.T) {
	s, a, b := pair(t, nil)
	s.run(time.Second)
	from := len(a.sent)
	s.stop(a) // A's "stopped" heartbeats, which make B take over at once
	captured := append([][]byte(nil), a.sent[from:]...)
	s.boot(a)
	if _, ok := s.until(3*time.Second, func() bool { return a.state("sip") == StateMaster }); !ok {
		t.Fatal("no failback")
	}
	captured = append(captured, a.sent...) // and everything else A sent
	// B restarts; the attacker replays all of it before A's next heartbeat.
	s.kill(b, false)
	s.boot(b)
	for _, c := range captured {
		b.m.receiveFrom(c, a.addr, s.clock.now)
	}
	st := b.m.Status()
	if len(st.Groups[0].Peers) != 0 {
		t.Errorf("restarted B took a replayed heartbeat: peers %+v", st.Groups[0].Peers)
	}
	if got := st.Rejected[RejectUnproven] + st.Rejected[RejectReplayed]; got != uint64(len(captured)) {
		t.Errorf("%d of %d replays rejected (%v)", got, len(captured), st.Rejected)
	}
	// A's real heartbeats are accepted right after.
	s.run(time.Second)
	s.wantState(b, "sip", StateBackup)
	s.wantHolders("edge-a")
	if p := b.m.Status().Groups[0].Peers; len(p) != 1 || p[0].Session != SessionProven {
		t.Errorf("B's peers after the replay %+v", p)
	}
}

// TestSenderRestartReplay: after A restarts, its heartbeats from the
// boot that ended (recorded by an attacker) are refused by B, which has
// heard A's new boot.
func TestSenderRestartReplay(t *testing.T) {
	s, a, b := pair(t, nil)
	s.run(time.Second)
	old := append([][]byte(nil), a.sent...)
	s.kill(a, false)
	s.boot(a)
	s.run(3 * time.Second)
	s.wantHolders("edge-a")
	before := b.m.Status().Rejected[RejectReplayed]
	for _, c := range old {
		b.m.receiveFrom(c, a.addr, s.clock.now)
	}
	if got := b.m.Status().Rejected[RejectReplayed] - before; got != uint64(len(old)) {
		t.Errorf("%d of %d heartbeats of A's ended boot rejected as replayed", got, len(old))
	}
	s.run(time.Second)
	s.wantHolders("edge-a")
}

// TestSessionsCheck: the receiver's rules, one heartbeat at a time.
func TestSessionsCheck(t *testing.T) {
	const self = 0x5e1f
	s := newSessions(self, 30*time.Second)
	now, wall := t0, t0.Add(-10*time.Hour) // the wall clock is never read for sessions
	msg := func(boot, seq uint64, echo ...uint64) *Message {
		return &Message{Node: "a", Boot: boot, Seq: seq, Time: t0.Add(time.Duration(boot) * time.Hour), Session: true, Echo: echo}
	}
	for i, tc := range []struct {
		m    *Message
		want string
	}{
		{msg(1, 10), RejectUnproven},                           // first contact: not yet echoing us
		{msg(1, 11, 99), RejectUnproven},                       // echoes someone else
		{msg(1, 12, 99, self), ""},                             // proven
		{msg(1, 12, self), RejectReplayed},                     // same sequence
		{msg(1, 5, self), RejectReplayed},                      // lower
		{msg(1, 13, self), ""},                                 //
		{msg(2, 1, self), ""},                                  // A restarted: new boot, any sequence
		{msg(1, 14, self), RejectReplayed},                     // the ended boot, even with a higher sequence
		{msg(2, 2), RejectUnproven},                            // current boot, but not echoing us
		{msg(3, 100), RejectUnproven},                          // another new boot, unproven: a candidate
		{msg(2, 3, self), ""},                                  //
		{msg(1, 15), RejectReplayed},                           // retired boots stay refused
		{msg(3, 101, self), ""},                                // the candidate proves itself
		{msg(2, 4, self), RejectReplayed},                      // and boot 2 is retired
		{&Message{Node: "b", Boot: 7, Seq: 1, Time: wall}, ""}, // previous release, timestamp within the window
		{&Message{Node: "b", Boot: 7, Seq: 1, Time: wall.Add(time.Hour)}, RejectReplayed}, // then by sequence only
		{&Message{Node: "b", Boot: 7, Seq: 2, Time: wall.Add(time.Hour)}, ""},
		{&Message{Node: "c", Boot: 7, Seq: 1, Time: wall.Add(31 * time.Second)}, RejectStale}, // first contact outside it
		{&Message{Node: "b", Boot: 8, Seq: 1, Time: wall.Add(-20 * time.Second)}, ""},         // b restarted, its clock stepped back 20 s
		{&Message{Node: "b", Boot: 7, Seq: 3, Time: wall}, RejectReplayed},                    // the boot b left
		{&Message{Node: "b", Boot: 9, Seq: 1, Time: wall.Add(-time.Hour)}, RejectStale},       // a new boot is judged as a first contact
	} {
		if got := s.check(tc.m, now, wall); got != tc.want {
			t.Errorf("%d: check(%s boot %d seq %d echo %v) = %q, want %q", i, tc.m.Node, tc.m.Boot, tc.m.Seq, tc.m.Echo, got, tc.want)
		}
		now = now.Add(time.Second)
	}
	// What we echo: the proven boot of a, no candidates left.
	if e := s.echo(); len(e) != 1 || e[0] != 3 {
		t.Errorf("echo %v, want [3]", e)
	}
	// The timestamp we send: b's clock as last heard plus the time since.
	if got, want := s.wireTime(now, wall), wall.Add(-20*time.Second).Add(now.Sub(t0.Add(18*time.Second))); !got.Equal(want) {
		t.Errorf("wireTime %v, want %v (the previous-release peer's clock)", got, want)
	}
}

// TestCandidatesBounded: unproven boots (an attacker replaying heartbeats
// of many old boots) never grow the state past its bounds, and the
// proven boot stays echoed.
func TestCandidatesBounded(t *testing.T) {
	s := newSessions(1, time.Second)
	s.check(&Message{Node: "a", Boot: 500, Seq: 1, Session: true, Echo: []uint64{1}}, t0, t0)
	for i := uint64(0); i < 1000; i++ {
		s.check(&Message{Node: "a", Boot: 1000 + i, Seq: 1, Session: true}, t0, t0)
	}
	ps := s.peers["a"]
	if len(ps.candidates) != maxCandidates || ps.boot != 500 {
		t.Errorf("candidates %d, boot %d", len(ps.candidates), ps.boot)
	}
	if e := s.echo(); len(e) != 1+maxCandidates || e[0] != 500 {
		t.Errorf("echo %v", e)
	}
}
