package failover

import "time"

// Who should hold a group's VIP: the candidates (this box and each live
// peer) and the order between them.

// candidate is one box competing for a group.
type candidate struct {
	node     string
	self     bool
	pinned   bool
	held     bool
	priority int
	main     bool
	state    State
}

// preferred reports whether a should hold the VIP rather than b: pinned
// (operator takeover) first, then not held (operator release), then
// priority, then role main, then the lower node id.
func preferred(a, b candidate) bool {
	if a.pinned != b.pinned {
		return a.pinned
	}
	if a.held != b.held {
		return b.held
	}
	if a.priority != b.priority {
		return a.priority > b.priority
	}
	if a.main != b.main {
		return a.main
	}
	return a.node < b.node
}

func (m *Manager) selfCandidate(g *group) candidate {
	return candidate{node: m.opt.Node, self: true, pinned: g.pinned, held: g.held,
		priority: g.effectivePriority(), main: g.opt.Role == RoleMain, state: g.state}
}

func peerCandidate(p *peerGroup) candidate {
	s := p.status
	return candidate{node: p.node, pinned: s.Flags&GroupTakeover != 0, held: s.Flags&GroupHeld != 0,
		priority: int(s.Priority), main: s.Flags&GroupMain != 0, state: s.State}
}

// eligible: the box can hold the VIP.
func (c candidate) eligible() bool {
	return c.priority > 0 && (c.state == StateInit || c.state == StateBackup || c.state == StateMaster)
}

// alive returns the peers heard within the deadtime that have not said
// they are stopping.
func (g *group) alive(now time.Time) []*peerGroup {
	var out []*peerGroup
	for _, p := range g.peers {
		if now.Sub(p.heard) < g.opt.Deadtime && p.status.State != StateStopped {
			out = append(out, p)
		}
	}
	return out
}
