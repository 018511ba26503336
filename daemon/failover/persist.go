package failover

import (
	"fmt"
	"sort"
	"time"
)

// Persist keeps what must survive a restart. The daemon backs it with
// its store: the operator's pins as runtime changes (PersistPins), the
// relay's original sysctl values as state (PersistRelay). Load reports
// found=false for an absent key. Calls are made with the Manager's lock
// held, only on operator commands, at start, and when a relay window
// first changes a value.
type Persist interface {
	Load(key string, v any) (found bool, err error)
	Save(key string, v any) error
}

// Keys given to Persist.
const (
	PersistPins  = "vip.pins"
	PersistRelay = "vip.relay"
	// PersistSeq is a floor for the heartbeat sequence of the next
	// boot: a peer of the previous release rejects a sequence not above
	// the last it accepted from us, also after our restart with a clock
	// that went backward.
	PersistSeq = "vip.seq"
)

// seqBlock is how far ahead of the sequence in use the persisted floor
// is set: one write per boot (and one per 2^32 heartbeats).
const seqBlock = 1 << 32

// loadSeq raises the starting sequence to the persisted floor, then
// persists the next floor (at start).
func (m *Manager) loadSeq() error {
	if m.opt.Persist == nil {
		return nil
	}
	var floor uint64
	if _, err := m.opt.Persist.Load(PersistSeq, &floor); err != nil {
		return fmt.Errorf("load heartbeat sequence floor: %w", err)
	}
	m.seq = max(m.seq, floor)
	return m.saveSeq()
}

func (m *Manager) saveSeq() error {
	m.seqCeil = m.seq + seqBlock
	if err := m.opt.Persist.Save(PersistSeq, m.seqCeil); err != nil {
		return fmt.Errorf("save heartbeat sequence floor: %w", err)
	}
	return nil
}

// nextSeq advances the heartbeat sequence, moving the persisted floor
// when the sequence reaches it. The caller holds mu.
func (m *Manager) nextSeq() {
	m.seq++
	if m.opt.Persist != nil && m.seqCeil != 0 && m.seq >= m.seqCeil {
		if err := m.saveSeq(); err != nil {
			m.log.Error("heartbeat sequence floor", "err", err)
		}
	}
}

// Pin is an operator's command that outlives a restart: a group released
// (this box keeps off the VIP while another box can hold it) or taken
// over (this box is preferred over any other).
type Pin struct {
	Kind  string    `json:"kind"` // PinReleased | PinTakeover
	Since time.Time `json:"since"`
}

// Pin kinds.
const (
	PinReleased = "released"
	PinTakeover = "takeover"
)

func (g *group) pin() string {
	switch {
	case g.held:
		return PinReleased
	case g.pinned:
		return PinTakeover
	}
	return ""
}

// loadPins applies the persisted pins (at start).
func (m *Manager) loadPins() error {
	if m.opt.Persist == nil {
		return nil
	}
	pins := map[string]Pin{}
	if _, err := m.opt.Persist.Load(PersistPins, &pins); err != nil {
		return fmt.Errorf("load operator pins: %w", err)
	}
	for name, p := range pins {
		g := m.byName[name]
		if g == nil {
			m.log.Warn("operator pin for a VIP group no longer configured; ignored", "group", name, "pin", p.Kind)
			continue
		}
		g.held, g.pinned = p.Kind == PinReleased, p.Kind == PinTakeover
		g.pinSince = p.Since
		m.log.Warn("operator pin restored", "group", name, "pin", p.Kind, "since", p.Since)
	}
	return nil
}

// savePins persists every group's pin. The caller holds mu.
func (m *Manager) savePins() error {
	if m.opt.Persist == nil {
		return nil
	}
	pins := map[string]Pin{}
	names := make([]string, 0, len(m.groups))
	for _, g := range m.groups {
		names = append(names, g.opt.Name)
	}
	sort.Strings(names)
	for _, n := range names {
		g := m.byName[n]
		if k := g.pin(); k != "" {
			pins[n] = Pin{Kind: k, Since: g.pinSince}
		}
	}
	if err := m.opt.Persist.Save(PersistPins, pins); err != nil {
		return fmt.Errorf("save operator pins: %w", err)
	}
	return nil
}
