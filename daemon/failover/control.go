package failover

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// GroupInfo is one VIP group as `sipedge ctl vip` shows it.
type GroupInfo struct {
	Name      string    `json:"name"`
	Address   string    `json:"address"`
	Interface string    `json:"interface"`
	Role      string    `json:"role"`
	State     string    `json:"state"`
	Since     time.Time `json:"since"`
	Reason    string    `json:"reason"`
	Priority  int       `json:"priority"`  // configured
	Effective int       `json:"effective"` // after health penalties
	// Holder is the node that holds the VIP as far as this box knows
	// ("" if none).
	Holder string `json:"holder"`
	Held   bool   `json:"held,omitempty"`   // released by operator
	Pinned bool   `json:"pinned,omitempty"` // taken over by operator
	// PinSince is when the operator released or took over the group (the
	// pin is kept in the store and survives a restart).
	PinSince *time.Time `json:"pin_since,omitempty"`
	// Relaying: this box released the VIP moments ago and still forwards
	// packets that arrive for it to the new holder.
	Relaying bool `json:"relaying,omitempty"`
	// TakeoverIn is how long until this box takes the VIP if nothing is
	// heard (backup/init); absent when it holds it or cannot take it.
	TakeoverIn *time.Duration `json:"takeover_in,omitempty"`
	Peers      []PeerInfo     `json:"peers"`
	Checks     []CheckInfo    `json:"checks,omitempty"`
	// Placement is the last VIP placement check (nil: none yet).
	Placement *PlacementInfo `json:"placement,omitempty"`
	GARPs     uint64         `json:"garps_sent"`
	Error     string         `json:"last_error,omitempty"`
}

// PeerInfo is what this box knows of a peer for one group.
type PeerInfo struct {
	Node      string        `json:"node"`
	State     string        `json:"state"`
	Priority  int           `json:"priority"`
	LastHeard time.Duration `json:"last_heard_ago"`
	Alive     bool          `json:"alive"`
	// Session: how its heartbeats are checked: "session" (boot id and
	// challenge, this release), "previous-release" (sequence, timestamp
	// at first contact), "unproven" (not yet proven fresh).
	Session string `json:"session,omitempty"`
}

// CheckInfo is one health check's status.
type CheckInfo struct {
	Check  string `json:"check"`
	OK     bool   `json:"ok"`
	Weight int    `json:"weight"`
	Error  string `json:"error,omitempty"`
}

// Status describes every group.
type Status struct {
	Node     string            `json:"node"`
	Groups   []GroupInfo       `json:"groups"`
	Rejected map[string]uint64 `json:"heartbeats_rejected"`
}

// Status returns the state of every group now.
func (m *Manager) Status() Status {
	now := m.opt.Clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	st := Status{Node: m.opt.Node, Rejected: m.rejects.counts()}
	for _, g := range m.groups {
		gi := GroupInfo{
			Name: g.opt.Name, Address: g.opt.Address.String(), Interface: g.opt.Interface,
			Role: string(g.opt.Role), State: g.state.String(), Since: g.since, Reason: g.reason,
			Priority: g.opt.Priority, Effective: g.effectivePriority(),
			Held: g.held, Pinned: g.pinned, GARPs: g.garps.Load(), Error: g.lastErr,
		}
		if g.held || g.pinned {
			since := g.pinSince
			gi.PinSince = &since
		}
		if m.relay != nil {
			if w := m.relay.open[g.opt.Interface]; w != nil && containsAddr(w.addrs, g.opt.Address.Addr().Unmap()) {
				gi.Relaying = true
			}
		}
		if e := g.annErr.Load(); e != nil && gi.Error == "" {
			gi.Error = *e
		}
		if g.state == StateMaster {
			gi.Holder = m.opt.Node
		}
		var latest time.Time
		for _, p := range g.peers {
			alive := now.Sub(p.heard) < g.opt.Deadtime && p.status.State != StateStopped
			gi.Peers = append(gi.Peers, PeerInfo{Node: p.node, State: p.status.State.String(),
				Priority: int(p.status.Priority), LastHeard: now.Sub(p.heard), Alive: alive, Session: m.sess.kind(p.node)})
			if alive && p.status.State == StateMaster {
				gi.Holder = p.node
			}
			if alive && p.heard.After(latest) {
				latest = p.heard
			}
		}
		sort.Slice(gi.Peers, func(i, j int) bool { return gi.Peers[i].Node < gi.Peers[j].Node })
		var in time.Duration
		switch g.state {
		case StateInit:
			in = g.opt.Initdead - now.Sub(g.start)
			if !latest.IsZero() {
				in = 0
			}
			gi.TakeoverIn = &in
		case StateBackup:
			if !latest.IsZero() {
				in = latest.Add(g.opt.Deadtime).Sub(now)
			}
			gi.TakeoverIn = &in
		}
		for _, c := range g.checks {
			gi.Checks = append(gi.Checks, CheckInfo{Check: c.opt.String(), OK: c.ok, Weight: c.opt.Weight, Error: c.lastErr})
		}
		gi.Placement = g.placementInfo()
		st.Groups = append(st.Groups, gi)
	}
	return st
}

// ErrNoGroup is returned for an unknown group name.
var ErrNoGroup = errors.New("no such VIP group")

// operate applies an operator's command to the group name under the
// manager's lock, then sends heartbeats at once (send copies, at least)
// and re-evaluates the group.
func (m *Manager) operate(name string, send int, do func(g *group, now time.Time) error) error {
	now := m.opt.Clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.byName[name]
	if g == nil {
		return fmt.Errorf("%w: %q", ErrNoGroup, name)
	}
	if err := do(g, now); err != nil {
		return err
	}
	m.sendNow = max(m.sendNow, send)
	m.evaluate(g, now)
	m.flush(now)
	m.poke()
	return nil
}

// Release gives the group's VIP to a peer for maintenance: this box is
// held (it does not want the VIP while another box can hold it) until
// Takeover. It fails when no live, healthy peer could take the VIP.
func (m *Manager) Release(name string) error {
	return m.operate(name, 1, func(g *group, now time.Time) error {
		ok := false
		for _, p := range g.alive(now) {
			if peerCandidate(p).eligible() {
				ok = true
			}
		}
		if !ok {
			return fmt.Errorf("release %s: no live, healthy peer could take the VIP", name)
		}
		if err := m.setPin(g, true, false, now); err != nil {
			return fmt.Errorf("release %s: %w", name, err)
		}
		m.log.Warn("VIP released by operator", "group", name)
		return nil
	})
}

// Takeover makes this box the preferred holder of the group (pinned)
// until Release: a peer holding the VIP is asked to release it and this
// box takes it at once.
func (m *Manager) Takeover(name string) error {
	return m.operate(name, 2, func(g *group, now time.Time) error {
		if f := g.faulted(); f != "" {
			return fmt.Errorf("takeover %s: group in fault (%s)", name, f)
		}
		if err := m.setPin(g, false, true, now); err != nil {
			return fmt.Errorf("takeover %s: %w", name, err)
		}
		m.log.Warn("VIP takeover by operator", "group", name)
		if g.state == StateInit {
			m.become(g, StateBackup, "takeover by operator", now)
		}
		return nil
	})
}

func (m *Manager) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// setPin sets the operator's pin on g and persists every pin; if that
// fails, nothing changes.
func (m *Manager) setPin(g *group, held, pinned bool, now time.Time) error {
	oldHeld, oldPinned, oldSince := g.held, g.pinned, g.pinSince
	if g.held != held || g.pinned != pinned {
		g.pinSince = now
	}
	g.held, g.pinned = held, pinned
	if err := m.savePins(); err != nil {
		g.held, g.pinned, g.pinSince = oldHeld, oldPinned, oldSince
		return err
	}
	return nil
}

// Auto clears the operator's release or takeover of the group: the box
// goes back to the automatic rules (priority, role, failback).
func (m *Manager) Auto(name string) error {
	return m.operate(name, 1, func(g *group, now time.Time) error {
		if err := m.setPin(g, false, false, now); err != nil {
			return fmt.Errorf("auto %s: %w", name, err)
		}
		m.log.Warn("VIP group back to automatic by operator", "group", name)
		return nil
	})
}
