package failover

import (
	"maps"
	"slices"
	"time"
)

// Rejection reasons, as counted in metrics and logged.
const (
	// RejectUnknownSource: the datagram came from an address that is not
	// a configured peer's; it is dropped before it is decoded.
	RejectUnknownSource = "unknown_source"
	RejectMalformed     = "malformed"
	RejectVersion       = "version"
	RejectBadMAC        = "bad_mac"
	// RejectReplayed: a sequence number not above the last accepted in
	// the sender's boot, or a boot of the sender that has ended.
	RejectReplayed = "replayed"
	// RejectStale: a heartbeat of the previous release (no session) whose
	// timestamp is outside the window, at first contact only.
	RejectStale = "stale"
	RejectSelf  = "self" // our own node id
	// RejectUnproven: authentic, but it does not echo this boot's id:
	// it may have been recorded before this box started. Normal for one
	// exchange after either box starts (the answer goes out at once).
	RejectUnproven = "unproven"
)

// Replay protection without the wall clock (issue 15).
//
// Every process start draws a random 64-bit boot id. It is sent in every
// heartbeat, and it is the challenge: a sender echoes the boot ids it has
// heard from its peers (the session extension, wire.go). A receiver
// accepts a heartbeat only if
//
//   - it echoes the receiver's current boot id: it was made after the
//     receiver started, so nothing recorded earlier (before a restart of
//     the receiver) passes;
//   - within the sender's boot, its sequence number is above the last
//     accepted one; a boot of the sender that was superseded is never
//     accepted again (replays from before the sender restarted).
//
// Neither the sender's nor the receiver's wall clock is read: a clock
// that is hours off or steps backward changes nothing.
//
// A heartbeat of the previous release (no extension) is judged as that
// release did: its sequence above the last accepted in the sender's
// boot, and, at first contact with a boot (none accepted from it in this
// process yet), its timestamp within ReplayWindow of our wall clock; a
// boot it left is refused. Once a
// previous-release peer has been heard, the time we send is our estimate
// of its clock (its last timestamp plus the time elapsed here since), so
// that its own 30 s check keeps accepting us whatever our clock does.

// Bounds of what is kept per peer node.
const (
	maxRetiredBoots = 16 // superseded boots remembered (sender restarts)
	maxCandidates   = 3  // unproven boots echoed while a session starts
	maxSessionPeers = 16 // node ids tracked (each needs the cluster key)
)

// sessions is the replay state of every peer node.
type sessions struct {
	self   uint64        // our boot id: the challenge peers must echo
	window time.Duration // previous-release first contact: timestamp window
	peers  map[string]*peerSession
}

type peerSession struct {
	proven  bool
	boot    uint64   // sender's current boot (proven)
	seq     uint64   // last accepted sequence in boot
	retired []uint64 // superseded boots, oldest first
	// candidates are boots heard in unproven heartbeats, newest first:
	// echoed so that the sender can prove its next heartbeats.
	candidates []uint64

	legacy      bool      // the last accepted heartbeat had no session
	legacySeq   uint64    // last accepted previous-release sequence
	legacyHeard bool      // a previous-release heartbeat was accepted
	legacyBoot  uint64    // its boot
	peerTime    time.Time // sender's timestamp in the last accepted one
	heardAt     time.Time // our clock when it was accepted
}

func newSessions(self uint64, window time.Duration) *sessions {
	return &sessions{self: self, window: window, peers: map[string]*peerSession{}}
}

func (s *sessions) peer(node string) *peerSession {
	ps := s.peers[node]
	if ps == nil {
		if len(s.peers) >= maxSessionPeers {
			return nil
		}
		ps = &peerSession{}
		s.peers[node] = ps
	}
	return ps
}

// check returns "" if m (authentic, from another node) is fresh, else
// the rejection reason. now is our (monotonic) clock, wall our wall
// clock: only a previous-release first contact reads it. It records m
// as the last accepted only when it accepts it.
func (s *sessions) check(m *Message, now, wall time.Time) string {
	ps := s.peer(m.Node)
	if ps == nil {
		return RejectUnproven // more node ids than a pair has
	}
	if !m.Session {
		switch {
		case ps.legacyHeard && m.Boot == ps.legacyBoot:
			if m.Seq <= ps.legacySeq {
				return RejectReplayed
			}
		case slices.Contains(ps.retired, m.Boot):
			return RejectReplayed
		default: // first contact, or the sender restarted
			if d := wall.Sub(m.Time); d > s.window || -d > s.window {
				return RejectStale
			}
			if ps.legacyHeard {
				ps.retire(ps.legacyBoot)
			}
			ps.legacyBoot = m.Boot
		}
		ps.legacy, ps.legacyHeard, ps.legacySeq = true, true, m.Seq
		ps.peerTime, ps.heardAt = m.Time, now
		return ""
	}
	if slices.Contains(ps.retired, m.Boot) {
		return RejectReplayed
	}
	if !slices.Contains(m.Echo, s.self) {
		if !ps.proven || m.Boot != ps.boot {
			ps.addCandidate(m.Boot)
		}
		return RejectUnproven
	}
	if ps.proven && m.Boot == ps.boot {
		if m.Seq <= ps.seq {
			return RejectReplayed
		}
	} else {
		if ps.proven {
			ps.retire(ps.boot)
		}
		ps.proven, ps.boot = true, m.Boot
		ps.candidates = slices.DeleteFunc(ps.candidates, func(b uint64) bool { return b == m.Boot })
	}
	ps.seq, ps.legacy = m.Seq, false
	ps.peerTime, ps.heardAt = m.Time, now
	return ""
}

func (ps *peerSession) addCandidate(boot uint64) {
	if slices.Contains(ps.retired, boot) {
		return
	}
	ps.candidates = slices.DeleteFunc(ps.candidates, func(b uint64) bool { return b == boot })
	ps.candidates = slices.Insert(ps.candidates, 0, boot)
	if len(ps.candidates) > maxCandidates {
		ps.candidates = ps.candidates[:maxCandidates]
	}
}

func (ps *peerSession) retire(boot uint64) {
	ps.retired = append(ps.retired, boot)
	if len(ps.retired) > maxRetiredBoots {
		ps.retired = ps.retired[1:]
	}
}

// echo is what our heartbeats echo: every peer's proven boot, then the
// candidates, at most maxEcho.
func (s *sessions) echo() []uint64 {
	out := []uint64{}
	nodes := slices.Sorted(maps.Keys(s.peers))
	for _, n := range nodes {
		if ps := s.peers[n]; ps.proven {
			out = append(out, ps.boot)
		}
	}
	for _, n := range nodes {
		out = append(out, s.peers[n].candidates...)
	}
	if len(out) > maxEcho {
		out = out[:maxEcho]
	}
	return out
}

// wireTime is the timestamp our heartbeats carry: our wall clock, or,
// once a previous-release peer has been heard, our estimate of its
// clock, which is what its timestamp check compares with. New receivers
// do not read it.
func (s *sessions) wireTime(now, wall time.Time) time.Time {
	for _, n := range slices.Sorted(maps.Keys(s.peers)) {
		if ps := s.peers[n]; ps.legacy {
			return ps.peerTime.Add(now.Sub(ps.heardAt))
		}
	}
	return wall
}

// kind tells how node's heartbeats are checked, for status: "session",
// "previous-release", or "unproven" (heard, not yet proven fresh).
func (s *sessions) kind(node string) string {
	ps := s.peers[node]
	switch {
	case ps == nil:
		return ""
	case ps.legacy:
		return SessionPrevious
	case ps.proven:
		return SessionProven
	}
	return SessionUnproven
}

// Session kinds in PeerInfo.
const (
	SessionProven   = "session"
	SessionPrevious = "previous-release"
	SessionUnproven = "unproven"
)
