package failover

import (
	"fmt"
	"time"
)

// A reader VIP (GroupOptions.Follows, the config's `follows: {group: db,
// on: peer}`) lives on the box that does not hold its primary group: the
// GUI reads from the backup database while the writer VIP is on the
// main. It needs nothing new on the wire: while this box holds the
// primary, the reader's effective priority drops to 2, which the
// heartbeat carries like any priority, so the peer is preferred for it;
// the holder releases once the peer has been preferred for stable_for,
// as in a failback (the reason says "follows"): the checks of the two
// groups rise at different moments when a database comes back, and a
// release at once let the reader bounce through the main box. While this box waits for the primary to come back to it
// (backup, preferred, failback on), the reader's priority is 1: the
// peer, still holding the primary at 2, keeps the reader too, so a
// failback does not bounce the reader through this box. A box with no
// live, eligible peer holds both: a low priority still wins when nobody
// else competes. Its own health checks (a mysql check accepting either
// read_only) still apply: a box whose database is down holds neither.

// followPenalty is what the primary takes off the reader's priority:
// down to 2 while this box holds it, to 1 while it is due back here.
func (g *group) followPenalty() int {
	switch {
	case g.leader == nil:
		return 0
	case g.leader.state == StateMaster:
		return g.opt.Priority - 2
	case g.leader.due:
		return g.opt.Priority - 1
	}
	return 0
}

// setDue records whether failback will bring g's VIP to this box; its
// followers' priority changes with it.
func (m *Manager) setDue(g *group, due bool, now time.Time) {
	if g.due == due {
		return
	}
	g.due = due
	m.leaderChanged(g, now)
}

// linkFollowers points each reader group at its primary (names were
// checked by checkFollows).
func (m *Manager) linkFollowers() {
	for _, g := range m.groups {
		if g.opt.Follows == "" {
			continue
		}
		l := m.byName[g.opt.Follows]
		g.leader = l
		l.followers = append(l.followers, g)
	}
}

// leaderChanged re-evaluates the groups that follow g after g changed
// state: their priority changed with it, and the peer hears the new one
// in the heartbeat become already owes.
func (m *Manager) leaderChanged(g *group, now time.Time) {
	if len(g.followers) > 0 {
		m.sendNow = max(m.sendNow, 1)
	}
	for _, f := range g.followers {
		m.met.setPriority(f.opt.Name, f.effectivePriority())
		m.evaluate(f, now)
	}
}

// checkFollows: a reader follows another group of this box that is not
// itself a reader.
func checkFollows(groups []GroupOptions) error {
	byName := map[string]GroupOptions{}
	for _, g := range groups {
		byName[g.Name] = g
	}
	for _, g := range groups {
		if g.Follows == "" {
			continue
		}
		l, ok := byName[g.Follows]
		switch {
		case !ok:
			return fmt.Errorf("vip %q follows %q: no such group", g.Name, g.Follows)
		case g.Follows == g.Name:
			return fmt.Errorf("vip %q follows itself", g.Name)
		case l.Follows != "":
			return fmt.Errorf("vip %q follows %q, which follows %q: follow a primary group", g.Name, g.Follows, l.Follows)
		case g.Priority < 3:
			return fmt.Errorf("vip %q: a reader VIP needs priority 3 or more (holding %q leaves it 2, waiting for it 1)", g.Name, g.Follows)
		}
	}
	return nil
}
