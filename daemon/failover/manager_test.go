package failover

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestBootElectsMain(t *testing.T) {
	s, a, _ := pair(t, nil)
	if n := len(a.hal.Announcements()); n != 3 {
		t.Errorf("A sent %d announcements at takeover, want 3", n)
	}
	s.run(3 * time.Second)
	s.wantHolders("edge-a")
}

func TestInitdeadAlone(t *testing.T) {
	s := newSim(t)
	a := s.add("edge-a", groupOpts(RoleMain, 150))
	s.boot(a)
	s.run(500 * time.Millisecond)
	s.wantState(a, "sip", StateInit)
	s.wantHolders()
	took, ok := s.until(time.Second, func() bool { return a.state("sip") == StateMaster })
	if !ok {
		t.Fatal("no takeover after initdead")
	}
	if total := 500*time.Millisecond + took; total < 600*time.Millisecond || total > 620*time.Millisecond {
		t.Errorf("took the VIP %v after start, want initdead 600ms", total)
	}
	if a.ev.events[len(a.ev.events)-1].Reason == "" {
		t.Error("event without reason")
	}
}

func TestStaleVIPRemovedAtStart(t *testing.T) {
	s, a, b := pair(t, nil)
	// B crashed earlier holding the VIP (no supervisor cleaned up): the
	// address is on its interface when it boots again.
	s.kill(b, true)
	if err := b.hal.AddAddress("eth0", testVIP); err != nil {
		t.Fatal(err)
	}
	s.allowSB = true
	s.boot(b)
	s.allowSB = false
	s.wantHolders("edge-a")
	s.run(time.Second)
	s.wantState(b, "sip", StateBackup)
	s.wantState(a, "sip", StateMaster)
}

func TestTakeoverAfterKill(t *testing.T) {
	for _, deadtime := range []time.Duration{300 * time.Millisecond, 10 * time.Second} {
		t.Run(deadtime.String(), func(t *testing.T) {
			s, a, b := pair(t, func(ga, gb *GroupOptions) { ga.Deadtime, gb.Deadtime = deadtime, deadtime })
			s.run(55 * time.Millisecond) // kill between two heartbeats
			s.kill(a, false)
			took, ok := s.until(deadtime+time.Second, func() bool { return b.state("sip") == StateMaster })
			if !ok {
				t.Fatal("backup did not take over")
			}
			if took < deadtime-100*time.Millisecond || took > deadtime+tick {
				t.Errorf("takeover %v after kill, want within (deadtime-interval, deadtime] = (%v, %v]", took, deadtime-100*time.Millisecond, deadtime)
			}
			s.wantHolders("edge-b")
			if n := len(b.hal.Announcements()); n != 3 {
				t.Errorf("%d announcements at takeover, want 3", n)
			}
			last := b.ev.events[len(b.ev.events)-1]
			if last.To != StateMaster || !strings.Contains(last.Reason, "not heard") {
				t.Errorf("event %+v, want master with reason 'not heard'", last)
			}
			// The GARP burst is repeated after repeat_after (2 s).
			s.run(2 * time.Second)
			if n := len(b.hal.Announcements()); n != 6 {
				t.Errorf("%d announcements 2 s after takeover, want 6", n)
			}
		})
	}
}

func TestFailback(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failback bool
	}{{"enabled", true}, {"disabled", false}} {
		t.Run(tc.name, func(t *testing.T) {
			s, a, b := pair(t, func(ga, gb *GroupOptions) { ga.Failback, gb.Failback = tc.failback, tc.failback })
			s.kill(a, false)
			s.run(time.Second)
			s.wantHolders("edge-b")
			s.boot(a)
			s.run(50 * time.Millisecond)
			s.wantState(a, "sip", StateBackup) // heard the holder: no initdead wait
			took, ok := s.until(3*time.Second, func() bool { return a.state("sip") == StateMaster })
			if !tc.failback {
				if ok {
					t.Fatalf("VIP returned to A after %v with failback disabled", took)
				}
				s.wantHolders("edge-b")
				return
			}
			if !ok {
				t.Fatal("no failback")
			}
			// stable_for 1 s counted from the first heartbeat heard.
			if took < 900*time.Millisecond || took > 1100*time.Millisecond {
				t.Errorf("failback %v after A's return, want about stable_for (1 s)", took)
			}
			s.wantHolders("edge-a")
			s.wantState(b, "sip", StateBackup)
			if s.overlap != 0 {
				t.Errorf("both held the VIP for %v", s.overlap)
			}
			// A took over in the very tick B released: find both events.
			var rel, take time.Time
			for _, e := range b.ev.events {
				if e.From == StateMaster {
					rel = e.Time
				}
			}
			for _, e := range a.ev.events {
				if e.To == StateMaster {
					take = e.Time
				}
			}
			if d := take.Sub(rel); d < 0 || d > time.Millisecond {
				t.Errorf("B released at %v, A took at %v: handover should be immediate", rel.Sub(t0), take.Sub(t0))
			}
		})
	}
}

func TestFlappingMain(t *testing.T) {
	for _, tc := range []struct {
		name string
		down time.Duration // 0: restarted at once (new boot id, no silence)
	}{{"silent-gaps", 400 * time.Millisecond}, {"instant-restarts", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			s, a, b := pair(t, nil)
			s.kill(a, false)
			s.run(time.Second)
			s.wantHolders("edge-b")
			bTrans := len(b.ev.events)
			for i := 0; i < 6; i++ {
				s.boot(a)
				s.run(700 * time.Millisecond) // shorter than stable_for
				s.kill(a, false)
				s.run(tc.down)
			}
			s.wantHolders("edge-b")
			if n := len(b.ev.events) - bTrans; n != 0 {
				t.Errorf("B changed state %d times while A flapped: %+v", n, b.ev.events[bTrans:])
			}
			s.boot(a)
			if _, ok := s.until(2*time.Second, func() bool { return a.state("sip") == StateMaster }); !ok {
				t.Fatal("no failback once A stayed up")
			}
			s.wantHolders("edge-a")
		})
	}
}

func TestCleanStopHandsOverAtOnce(t *testing.T) {
	s, a, b := pair(t, nil)
	s.run(30 * time.Millisecond)
	stopAt := s.clock.now
	s.stop(a)
	s.wantHolders("edge-b")
	s.wantState(b, "sip", StateMaster)
	last := b.ev.events[len(b.ev.events)-1]
	if d := last.Time.Sub(stopAt); d < 0 || d > time.Millisecond || !strings.Contains(last.Reason, "stopped") {
		t.Errorf("B's takeover %+v, want at once (within the wire's 100µs) after A stopped at %v", last, stopAt.Sub(t0))
	}
	// Restarting A fails back after stable_for.
	s.boot(a)
	if _, ok := s.until(2*time.Second, func() bool { return a.state("sip") == StateMaster }); !ok {
		t.Fatal("no failback after restart")
	}
	// Stopping the backup changes nothing for the holder.
	s.stop(b)
	s.run(time.Second)
	s.wantHolders("edge-a")
}

func TestSplitBrain(t *testing.T) {
	for _, tc := range []struct {
		name         string
		prioA, prioB int
		roleA, roleB Role
		winner       string
	}{
		{"priority", 150, 100, RoleMain, RoleBackup, "edge-a"},
		{"priority-backup-wins", 100, 150, RoleMain, RoleBackup, "edge-b"},
		{"role", 100, 100, RoleBackup, RoleMain, "edge-b"},
		{"node-id", 100, 100, RoleBackup, RoleBackup, "edge-a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t)
			ga, gb := groupOpts(tc.roleA, tc.prioA), groupOpts(tc.roleB, tc.prioB)
			a, b := s.add("edge-a", ga), s.add("edge-b", gb)
			s.boot(a)
			s.boot(b)
			s.run(300 * time.Millisecond)
			s.wantHolders(tc.winner)
			// Cut the link: both take the VIP after the deadtime.
			s.cut = true
			s.run(time.Second)
			s.wantHolders("edge-a", "edge-b")
			ann := map[string]int{"edge-a": len(a.hal.Announcements()), "edge-b": len(b.hal.Announcements())}
			// Heal: the loser releases within one heartbeat.
			s.cut = false
			s.allowSB = true
			took, ok := s.until(time.Second, func() bool { return len(s.holders()) == 1 })
			s.allowSB = false
			if !ok {
				t.Fatal("split brain not resolved")
			}
			if took > 100*time.Millisecond+tick {
				t.Errorf("split brain resolved after %v, want within one heartbeat (100 ms)", took)
			}
			s.wantHolders(tc.winner)
			w := a
			if tc.winner == "edge-b" {
				w = b
			}
			if n := len(w.hal.Announcements()); n <= ann[tc.winner] {
				t.Errorf("winner did not announce the VIP again after split brain (%d announcements)", n)
			}
			s.run(3 * time.Second)
			s.wantHolders(tc.winner)
		})
	}
}

func TestHealthFault(t *testing.T) {
	s, a, b := pair(t, func(ga, gb *GroupOptions) {
		ga.Track = []TrackOptions{{Kind: CheckTCP, Target: "127.0.0.1:3306"}}
	})
	ga := a.m.byName["sip"]
	chk := ga.checks[0]
	a.m.reportCheck(ga, chk, errors.New("connection refused"), s.clock.now)
	s.deliver()
	s.wantState(a, "sip", StateMaster) // fall 2
	a.m.reportCheck(ga, chk, errors.New("connection refused"), s.clock.now)
	s.deliver()
	s.wantState(a, "sip", StateFault)
	s.wantState(b, "sip", StateMaster) // took at once
	s.wantHolders("edge-b")
	s.run(2 * time.Second)
	s.wantHolders("edge-b")
	if got := a.m.Status().Groups[0].Effective; got != 0 {
		t.Errorf("effective priority in fault %d, want 0", got)
	}
	// Recovery: rise 2, then failback after stable_for.
	for i := 0; i < 2; i++ {
		a.m.reportCheck(ga, chk, nil, s.clock.now)
		s.deliver()
	}
	s.wantState(a, "sip", StateBackup)
	if _, ok := s.until(2*time.Second, func() bool { return a.state("sip") == StateMaster }); !ok {
		t.Fatal("no failback after recovery")
	}
}

func TestHealthWeightLowersPriority(t *testing.T) {
	s, a, b := pair(t, func(ga, gb *GroupOptions) {
		ga.Track = []TrackOptions{{Kind: CheckSIPOptions, Target: "127.0.0.1:5060", Weight: 60, Fall: 1, Rise: 1}}
		gb.Track = []TrackOptions{{Kind: CheckSIPOptions, Target: "127.0.0.1:5060", Weight: 60, Fall: 1, Rise: 1}}
	})
	ga, gbb := a.m.byName["sip"], b.m.byName["sip"]
	// 150-60 = 90 < 100: A hands over at once, without stable_for.
	a.m.reportCheck(ga, ga.checks[0], errors.New("503"), s.clock.now)
	s.deliver()
	s.wantHolders("edge-b")
	s.wantState(a, "sip", StateBackup)
	// B's service fails too: 100-60 = 40 < 90: A is preferred again and
	// B, lowered by health, hands back at once.
	b.m.reportCheck(gbb, gbb.checks[0], errors.New("503"), s.clock.now)
	s.deliver()
	s.wantHolders("edge-a")
	s.run(2 * time.Second)
	s.wantHolders("edge-a")
}

func TestForgedHeartbeatsIgnored(t *testing.T) {
	s, a, b := pair(t, nil)
	forge := func(key []byte, node string, st State, prio uint8) []byte {
		b, err := Encode(&Message{Node: node, Seq: 1 << 62, Time: s.clock.now,
			Groups: []GroupStatus{{Name: "sip", State: st, Priority: prio}}}, key)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	wrongKey := []byte("not the cluster key, 32 bytes!!!")
	valid := forge(testKey, "edge-z", StateMaster, 254)
	attacks := []struct {
		to     *simNode
		b      []byte
		reason string
	}{
		{b, forge(wrongKey, "edge-a", StateStopped, 0), RejectBadMAC},  // "A stopped": B would take at once
		{a, forge(wrongKey, "edge-b", StateMaster, 254), RejectBadMAC}, // "split brain, B preferred"
		{a, forge(wrongKey, "edge-b", StateBackup, 254), RejectBadMAC}, // failback bait
		{a, append(valid[:len(valid)-33:len(valid)-33], valid[len(valid)-32:]...), RejectBadMAC},
		{b, []byte("hello"), RejectMalformed},
		{b, append([]byte("SEHB\x09"), make([]byte, 60)...), RejectVersion},
		{a, forge(testKey, "edge-a", StateMaster, 254), RejectSelf},
	}
	for i := 0; i < 30; i++ {
		for _, at := range attacks {
			at.to.m.receive(at.b, "192.0.2.66:694", s.clock.now)
		}
		s.deliver()
		s.run(100 * time.Millisecond)
	}
	s.wantHolders("edge-a")
	s.wantState(a, "sip", StateMaster)
	s.wantState(b, "sip", StateBackup)
	want := map[*simNode]map[string]uint64{}
	for _, at := range attacks {
		if want[at.to] == nil {
			want[at.to] = map[string]uint64{}
		}
		want[at.to][at.reason] += 30
	}
	for n, w := range want {
		got := n.m.Status().Rejected
		for r, c := range w {
			if got[r] != c {
				t.Errorf("%s rejected[%s] = %d, want %d (all: %v)", n.name, r, got[r], c, got)
			}
		}
	}
	if len(a.m.byName["sip"].peers) != 1 || len(b.m.byName["sip"].peers) != 1 {
		t.Error("a forged node id was recorded as a peer")
	}
}

func TestReplayedHeartbeatsIgnored(t *testing.T) {
	s, a, b := pair(t, nil)
	s.run(time.Second)
	captured := append([][]byte(nil), a.sent...)
	s.kill(a, false)
	// An attacker replays A's recorded heartbeats to B, one every 50 ms:
	// B must still take over at the deadtime.
	i := 0
	took, ok := s.until(2*time.Second, func() bool {
		b.m.receive(captured[i%len(captured)], "192.0.2.66:694", s.clock.now)
		i++
		s.clock.now = s.clock.now.Add(0)
		return b.state("sip") == StateMaster
	})
	if !ok || took > 310*time.Millisecond {
		t.Fatalf("takeover after %v (ok %v) under replay, want <= deadtime", took, ok)
	}
	if got := b.m.Status().Rejected[RejectReplayed]; got == 0 {
		t.Error("replays not counted")
	}
	// A correctly signed heartbeat with an old timestamp is stale.
	old, _ := Encode(&Message{Node: "edge-c", Seq: 1, Time: s.clock.now.Add(-time.Minute),
		Groups: []GroupStatus{{Name: "sip", State: StateMaster, Priority: 254}}}, testKey)
	b.m.receive(old, "192.0.2.66:694", s.clock.now)
	s.run(time.Second)
	s.wantState(b, "sip", StateMaster)
	if got := b.m.Status().Rejected[RejectStale]; got != 1 {
		t.Errorf("stale rejections %d, want 1", got)
	}
}

func TestOperatorReleaseAndTakeover(t *testing.T) {
	s, a, b := pair(t, nil)
	if err := a.m.Release("nope"); !errors.Is(err, ErrNoGroup) {
		t.Errorf("Release(unknown) = %v", err)
	}
	// Release on the main: B takes at once and A does not take it back.
	if err := a.m.Release("sip"); err != nil {
		t.Fatal(err)
	}
	s.deliver()
	s.wantHolders("edge-b")
	s.run(3 * time.Second)
	s.wantHolders("edge-b")
	if st := a.m.Status().Groups[0]; !st.Held || st.Holder != "edge-b" {
		t.Errorf("status %+v, want held, holder edge-b", st)
	}
	// Takeover on A: B releases, A takes, at once.
	if err := a.m.Takeover("sip"); err != nil {
		t.Fatal(err)
	}
	s.deliver()
	s.wantHolders("edge-a")
	// Takeover on the backup pins it: no failback to the main.
	if err := b.m.Takeover("sip"); err != nil {
		t.Fatal(err)
	}
	s.deliver()
	s.wantHolders("edge-b")
	s.run(3 * time.Second)
	s.wantHolders("edge-b")
	// Release on B hands back to A.
	if err := b.m.Release("sip"); err != nil {
		t.Fatal(err)
	}
	s.deliver()
	s.wantHolders("edge-a")
	// Release with no peer to take it is refused.
	s.kill(b, false)
	s.run(time.Second)
	if err := a.m.Release("sip"); err == nil {
		t.Error("Release with the peer dead succeeded")
	}
	s.wantHolders("edge-a")
}

func TestStatus(t *testing.T) {
	s, a, b := pair(t, nil)
	s.run(50 * time.Millisecond)
	st := b.m.Status()
	g := st.Groups[0]
	if g.State != "backup" || g.Holder != "edge-a" || len(g.Peers) != 1 || !g.Peers[0].Alive || g.Peers[0].State != "master" {
		t.Fatalf("B status %+v", g)
	}
	if g.TakeoverIn == nil || *g.TakeoverIn <= 0 || *g.TakeoverIn > 300*time.Millisecond {
		t.Errorf("time to takeover %v, want in (0, deadtime]", g.TakeoverIn)
	}
	if g.Peers[0].LastHeard > 100*time.Millisecond {
		t.Errorf("peer last heard %v ago, want <= interval", g.Peers[0].LastHeard)
	}
	if ga := a.m.Status().Groups[0]; ga.Holder != "edge-a" || ga.TakeoverIn != nil || ga.GARPs != 3 {
		t.Errorf("A status %+v", ga)
	}
}

func TestTakeoverRetriedWhenAddressFails(t *testing.T) {
	s, a, b := pair(t, nil)
	b.hal.FailNext("AddAddress", errors.New("netlink: busy"))
	s.kill(a, false)
	if _, ok := s.until(time.Second, func() bool { return b.m.Status().Groups[0].Error != "" }); !ok {
		t.Fatal("address failure not reported")
	}
	s.wantState(b, "sip", StateBackup)
	if _, ok := s.until(200*time.Millisecond, func() bool { return b.state("sip") == StateMaster }); !ok {
		t.Fatal("takeover not retried")
	}
	s.wantHolders("edge-b")
	if e := b.m.Status().Groups[0].Error; !strings.Contains(e, "netlink: busy") {
		t.Errorf("last error %q", e)
	}
}

func TestOptionsValidation(t *testing.T) {
	base := func() Options {
		return Options{Node: "a", Key: testKey, Groups: []GroupOptions{{Name: "sip", Address: testVIP, Interface: "eth0"}}}
	}
	for _, tc := range []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"ok", func(*Options) {}, ""},
		{"no-node", func(o *Options) { o.Node = "" }, "node id"},
		{"short-key", func(o *Options) { o.Key = []byte("short") }, "key"},
		{"dup", func(o *Options) { o.Groups = append(o.Groups, o.Groups[0]) }, "duplicate"},
		{"role", func(o *Options) { o.Groups[0].Role = "boss" }, "role"},
		{"priority", func(o *Options) { o.Groups[0].Priority = 255 }, "priority"},
		{"deadtime", func(o *Options) { o.Groups[0].Deadtime = 1500 * time.Millisecond }, "deadtime"},
		{"track", func(o *Options) { o.Groups[0].Track = []TrackOptions{{Kind: "icmp", Target: "x"}} }, "unknown kind"},
		{"no-address", func(o *Options) { o.Groups[0].Address = netipZero }, "no address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base()
			tc.mod(&o)
			got, err := o.withDefaults()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				g := got.Groups[0]
				if got.Interval != time.Second || g.Deadtime != 10*time.Second || g.Initdead != 20*time.Second || g.Priority != 100 || g.GARPCount != 5 {
					t.Errorf("defaults: %+v %+v", got, g)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
}

// Both boxes leave fault at the same moment (their shared database came
// back): each last heard the other in fault, yet they must not both take
// the VIP.
func TestSimultaneousRecovery(t *testing.T) {
	for _, skew := range []time.Duration{0, tick, 50 * time.Millisecond} {
		t.Run(skew.String(), func(t *testing.T) {
			s, a, b := pair(t, func(ga, gb *GroupOptions) {
				ga.Track = []TrackOptions{{Kind: CheckTCP, Target: "db:3306", Fall: 1, Rise: 1}}
				gb.Track = []TrackOptions{{Kind: CheckTCP, Target: "db:3306", Fall: 1, Rise: 1}}
			})
			report := func(n *simNode, err error) {
				g := n.m.byName["sip"]
				n.m.reportCheck(g, g.checks[0], err, s.clock.now)
			}
			report(a, errors.New("refused"))
			report(b, errors.New("refused"))
			s.deliver()
			s.run(time.Second)
			s.wantHolders()
			s.wantState(a, "sip", StateFault)
			s.wantState(b, "sip", StateFault)
			report(b, nil)
			s.run(skew)
			report(a, nil)
			if h := s.holders(); len(h) > 1 {
				t.Fatalf("both took the VIP on stale news: %v", h)
			}
			s.deliver()
			s.run(time.Second) // fails on any overlap
			s.wantHolders("edge-a")
		})
	}
}

// TestFailbackNoWait (issue 18 item 7): StableFor negative (the config's
// stable_for: 0s) hands the VIP back on the first heartbeat that shows
// the preferred peer healthy in backup, with no overlap.
func TestFailbackNoWait(t *testing.T) {
	s, a, _ := pair(t, func(ga, gb *GroupOptions) { ga.StableFor, gb.StableFor = -1, -1 })
	s.kill(a, false)
	s.run(time.Second)
	s.wantHolders("edge-b")
	s.boot(a)
	took, ok := s.until(3*time.Second, func() bool { return a.state("sip") == StateMaster })
	if !ok {
		t.Fatal("no failback")
	}
	if took > 400*time.Millisecond {
		t.Errorf("failback %v after A's return with no stable_for, want within a few heartbeats (100 ms interval)", took)
	}
	if s.overlap != 0 {
		t.Errorf("both held the VIP for %v", s.overlap)
	}
}
