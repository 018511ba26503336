package failover

import (
	"fmt"
	"time"
)

// A reader VIP (GroupOptions.Follows, the config's `follows: {group: db,
// on: peer}`) lives on the box that does not hold its primary group: the
// GUI reads from the backup database while the writer VIP is on the
// main. It needs nothing new on the wire: while this box holds the
// primary, the reader's effective priority drops to 1 (the floor), which
// the heartbeat carries like any priority, so the peer is preferred for
// it; the holder releases at once when that happens (the reason says
// "follows"). A box with no live, eligible peer holds both: a reader
// priority of 1 still wins when nobody else competes. Its own health
// checks (a mysql check accepting either read_only) still apply: a box
// whose database is down holds neither.

// followPenalty is what holding the primary takes off the reader's
// priority: all of it but 1.
func (g *group) followPenalty() int {
	if g.leader == nil || g.leader.state != StateMaster {
		return 0
	}
	return g.opt.Priority - 1
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
		case g.Priority < 2:
			return fmt.Errorf("vip %q: a reader VIP needs priority 2 or more (1 is what holding %q leaves it)", g.Name, g.Follows)
		}
	}
	return nil
}
