package failover

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// The pair summary: each box's status for the other box's pages (web,
// `ctl pair`, console), carried by the heartbeats (wire.go). This package
// carries it as opaque bytes, bounded (MaxSummary) and authenticated with
// the heartbeat; what is in it is the daemon's business (package pair).
// A peer's summary is kept only from a heartbeat that passed every check
// (source, MAC, session), and replaced by the next one.

// pairBoard is the summary we send and the peers' last ones.
type pairBoard struct {
	out    atomic.Pointer[[]byte]
	warned atomic.Bool
	peers  map[string]*pairPeer // under Manager.mu
}

type pairPeer struct {
	heard     time.Time // our monotonic clock
	heardWall time.Time // our wall clock then
	groups    []GroupStatus
	stopping  bool
	summary   []byte
}

// PairPeer is what this box knows of a peer box, for the pair views.
type PairPeer struct {
	Node string `json:"node"`
	// Address is the peer's heartbeat address when it has never been
	// heard (Node is then empty).
	Address string `json:"address,omitempty"`
	// LastHeard is when its last accepted heartbeat arrived (this box's
	// wall clock); zero if never.
	LastHeard time.Time     `json:"last_heard"`
	Ago       time.Duration `json:"last_heard_ago"`
	// Alive: heard within the shortest deadtime of the groups, and not
	// stopped.
	Alive bool `json:"alive"`
	// UnreachableSince is set when it is not alive: its last heartbeat,
	// or this box's start if it was never heard.
	UnreachableSince *time.Time `json:"unreachable_since,omitempty"`
	Stopped          bool       `json:"stopped,omitempty"` // its last heartbeat said it stopped cleanly
	Session          string     `json:"session,omitempty"`
	// Groups: each VIP group as its heartbeat said.
	Groups []PairGroup `json:"groups"`
	// Summary is its pair summary, as it sent it (nil: a box of an
	// earlier release, or one that sends none).
	Summary []byte `json:"summary,omitempty"`
}

// PairGroup is one of a peer's VIP groups.
type PairGroup struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	Priority int    `json:"priority"`
	Main     bool   `json:"main"`
}

// SetSummary sets the summary the next heartbeats carry (nil: none). It
// fails when b is longer than MaxSummary.
func (m *Manager) SetSummary(b []byte) error {
	if len(b) > MaxSummary {
		return fmt.Errorf("pair summary of %d bytes, at most %d", len(b), MaxSummary)
	}
	c := slices.Clone(b)
	m.pair.out.Store(&c)
	return nil
}

// outgoing is the summary for a heartbeat that carries groups groups,
// or nil when it does not fit beside them.
func (p *pairBoard) outgoing(m *Manager, groups int) []byte {
	b := p.out.Load()
	if b == nil || len(*b) == 0 {
		return nil
	}
	if groups+summaryChunks(len(*b))+1 > maxGroups {
		if !p.warned.Swap(true) {
			m.log.Warn("pair summary not sent: too many VIP groups beside it", "groups", groups, "bytes", len(*b))
		}
		return nil
	}
	return *b
}

// heard records an accepted heartbeat. The caller holds Manager.mu.
func (p *pairBoard) heard(msg *Message, now, wall time.Time) {
	if p.peers == nil {
		p.peers = map[string]*pairPeer{}
	}
	pp := p.peers[msg.Node]
	if pp == nil {
		if len(p.peers) >= maxSessionPeers {
			return
		}
		pp = &pairPeer{}
		p.peers[msg.Node] = pp
	}
	pp.heard, pp.heardWall = now, wall
	pp.groups = slices.Clone(msg.Groups)
	pp.stopping = msg.Flags&MsgStopping != 0
	pp.summary = msg.Summary
}

// Pair returns what this box knows of each peer box, by node id; a
// configured peer never heard is one entry with its address.
func (m *Manager) Pair() []PairPeer {
	now := m.opt.Clock.Now()
	wall := m.opt.WallClock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	dead := time.Duration(0)
	var start time.Time
	for _, g := range m.groups {
		if dead == 0 || g.opt.Deadtime < dead {
			dead = g.opt.Deadtime
		}
		if start.IsZero() || g.start.Before(start) {
			start = g.start
		}
	}
	var out []PairPeer
	for node, pp := range m.pair.peers {
		pi := PairPeer{Node: node, LastHeard: pp.heardWall, Ago: now.Sub(pp.heard), Stopped: pp.stopping,
			Session: m.sess.kind(node), Summary: slices.Clone(pp.summary)}
		stopped := pp.stopping
		for _, g := range pp.groups {
			pi.Groups = append(pi.Groups, PairGroup{Name: g.Name, State: g.State.String(), Priority: int(g.Priority), Main: g.Flags&GroupMain != 0})
			stopped = stopped || g.State == StateStopped
		}
		pi.Stopped = stopped
		pi.Alive = pi.Ago < dead && !stopped
		if !pi.Alive {
			t := pp.heardWall
			pi.UnreachableSince = &t
		}
		out = append(out, pi)
	}
	slices.SortFunc(out, func(a, b PairPeer) int { return strings.Compare(a.Node, b.Node) })
	if len(out) == 0 {
		for _, addr := range m.opt.Peers {
			t := wall
			if !start.IsZero() {
				t = wall.Add(-now.Sub(start))
			}
			out = append(out, PairPeer{Address: addr, UnreachableSince: &t, Groups: []PairGroup{}})
		}
	}
	return out
}
