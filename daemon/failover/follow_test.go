package failover

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var readerVIP = netip.MustParsePrefix("192.0.2.20/24")

// readerPair boots A and B with the primary group "sip" (A main) and a
// reader group "rd" that follows it on the peer.
func readerPair(t *testing.T) (*sim, *simNode, *simNode) {
	s := newSim(t)
	groups := func(role Role, prio int) []GroupOptions {
		p := groupOpts(role, prio)
		r := groupOpts(role, prio)
		r.Name, r.Address, r.Follows = "rd", readerVIP, "sip"
		return []GroupOptions{p, r}
	}
	a, b := s.add("db-a", groups(RoleMain, 150)...), s.add("db-b", groups(RoleBackup, 100)...)
	s.boot(a)
	s.boot(b)
	return s, a, b
}

func (s *sim) readers() []string {
	var h []string
	for _, n := range s.nodes {
		if n.hal.HasAddress("eth0", readerVIP) {
			h = append(h, n.name)
		}
	}
	return h
}

// runReader runs d, failing if both boxes hold the reader VIP at once.
func (s *sim) runReader(d time.Duration) {
	s.t.Helper()
	for end := s.clock.now.Add(d); s.clock.now.Before(end); {
		s.run(tick)
		if h := s.readers(); len(h) > 1 {
			s.t.Fatalf("at %v: reader VIP held by %v at once", s.clock.now.Sub(t0), h)
		}
	}
}

func (s *sim) wantReader(want string) {
	s.t.Helper()
	if h := s.readers(); len(h) != 1 || h[0] != want {
		s.t.Fatalf("at %v: reader VIP on %v, want %s", s.clock.now.Sub(t0), h, want)
	}
}

// TestReaderFollowsPeer (issue 18 item 4): the reader VIP lives on the
// box that does not hold the primary; a box alone holds both; takeover
// and failback move it the other way, never on both boxes at once.
func TestReaderFollowsPeer(t *testing.T) {
	s, a, b := readerPair(t)
	s.runReader(time.Second)
	s.wantHolders("db-a")
	s.wantReader("db-b")
	if p := a.m.Status().Groups[1].Effective; p != 2 {
		t.Errorf("A's reader priority %d while it holds the primary, want 2", p)
	}

	s.kill(a, false)
	_ = a.hal.DelAddress("eth0", readerVIP) // as PID 1 does for a dead daemon
	s.runReader(time.Second)
	s.wantHolders("db-b")
	s.wantReader("db-b") // alone: both

	s.boot(a)
	s.runReader(3 * time.Second) // failback (stable_for 1 s)
	s.wantHolders("db-a")
	s.wantReader("db-b")
	for _, e := range a.ev.events {
		if e.Group == "rd" && e.To == StateMaster {
			t.Errorf("the reader went through A during the failback: %s", e.Reason)
		}
	}

	s.kill(b, false)
	_ = b.hal.DelAddress("eth0", readerVIP)
	s.runReader(time.Second)
	s.wantHolders("db-a")
	s.wantReader("db-a") // alone: both
	s.boot(b)
	s.runReader(2 * time.Second)
	s.wantHolders("db-a")
	s.wantReader("db-b")
	var why string
	for _, e := range a.ev.events {
		if e.Group == "rd" && e.From == StateMaster {
			why = e.Reason
		}
	}
	if !strings.Contains(why, "follows sip on the peer") {
		t.Errorf("A released the reader for %q, want it to say it follows sip", why)
	}
}

func TestFollowsValidation(t *testing.T) {
	for _, tc := range []struct {
		follows, self string
		prio          int
		want          string
	}{
		{"nope", "rd", 100, "no such group"},
		{"rd", "rd", 100, "follows itself"},
		{"sip", "rd", 2, "priority 3 or more"},
	} {
		p, r := groupOpts(RoleMain, 150), groupOpts(RoleMain, tc.prio)
		r.Name, r.Address, r.Follows = tc.self, readerVIP, tc.follows
		_, err := (Options{Node: "a", Key: testKey, Interval: 100 * time.Millisecond, Groups: []GroupOptions{p, r}}).withDefaults()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("follows %q: err %v, want %q", tc.follows, err, tc.want)
		}
	}
}

// TestReaderChecksRiseApart: A's database comes back and its reader
// check rises 500 ms before its writer check; the reader stays on B (a
// release at once moved it to A and back).
func TestReaderChecksRiseApart(t *testing.T) {
	s := newSim(t)
	groups := func(role Role, prio int) []GroupOptions {
		p := groupOpts(role, prio)
		p.Track = []TrackOptions{{Kind: CheckTCP, Target: "127.0.0.1:3306"}}
		r := p
		r.Name, r.Address, r.Follows = "rd", readerVIP, "sip"
		return []GroupOptions{p, r}
	}
	a, b := s.add("db-a", groups(RoleMain, 150)...), s.add("db-b", groups(RoleBackup, 100)...)
	s.boot(a)
	s.boot(b)
	s.runReader(time.Second)
	s.wantHolders("db-a")
	s.wantReader("db-b")
	report := func(name string, err error) {
		g := a.m.byName[name]
		for range 2 {
			a.m.reportCheck(g, g.checks[0], err, s.clock.now)
			s.deliver()
		}
	}
	report("sip", errors.New("mysqld down"))
	report("rd", errors.New("mysqld down"))
	s.runReader(time.Second)
	s.wantHolders("db-b")
	s.wantReader("db-b")
	report("rd", nil)
	s.runReader(500 * time.Millisecond)
	report("sip", nil)
	s.runReader(3 * time.Second)
	s.wantHolders("db-a")
	s.wantReader("db-b")
	for _, e := range a.ev.events {
		if e.Group == "rd" && e.To == StateMaster {
			t.Errorf("the reader went through A: %s", e.Reason)
		}
	}
}
