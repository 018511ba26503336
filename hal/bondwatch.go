package hal

import (
	"context"
	"fmt"
	"time"
)

// BondEventKind says what changed on a bond.
type BondEventKind string

const (
	// BondActiveChanged: the active slave moved (active-backup failover).
	BondActiveChanged BondEventKind = "active-changed"
	// BondSlaveLink: a slave's MII link went up or down.
	BondSlaveLink BondEventKind = "slave-link"
	// BondSlaveAdded and BondSlaveRemoved: enslaved NICs changed.
	BondSlaveAdded   BondEventKind = "slave-added"
	BondSlaveRemoved BondEventKind = "slave-removed"
	// BondOper: the bond itself went operationally up or down (all links lost).
	BondOper BondEventKind = "oper"
)

// BondEvent is one change seen between two reads of a bond.
type BondEvent struct {
	Bond  string
	Kind  BondEventKind
	Slave string // the slave concerned, if any
	Old   string // previous value ("" if none)
	New   string // new value
	// Status is the bond as read after the change.
	Status BondStatus
}

// String renders the event for logs and the event log.
func (e BondEvent) String() string {
	switch e.Kind {
	case BondActiveChanged:
		return fmt.Sprintf("%s: active slave %s -> %s", e.Bond, orNone(e.Old), orNone(e.New))
	case BondSlaveLink:
		return fmt.Sprintf("%s: slave %s link %s -> %s", e.Bond, e.Slave, e.Old, e.New)
	case BondSlaveAdded:
		return fmt.Sprintf("%s: slave %s added", e.Bond, e.Slave)
	case BondSlaveRemoved:
		return fmt.Sprintf("%s: slave %s removed", e.Bond, e.Slave)
	case BondOper:
		return fmt.Sprintf("%s: bond %s -> %s", e.Bond, e.Old, e.New)
	}
	return fmt.Sprintf("%s: %s %s %s -> %s", e.Bond, e.Kind, e.Slave, e.Old, e.New)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

// DiffBond lists the changes from old to cur, in a stable order: slaves
// removed, added, link changes (in cur's slave order), active slave, then
// the bond's own state.
func DiffBond(old, cur BondStatus) []BondEvent {
	var ev []BondEvent
	add := func(k BondEventKind, slave, o, n string) {
		ev = append(ev, BondEvent{Bond: cur.Name, Kind: k, Slave: slave, Old: o, New: n, Status: cur})
	}
	oldSlaves := map[string]SlaveStatus{}
	for _, s := range old.Slaves {
		oldSlaves[s.Name] = s
	}
	curSlaves := map[string]bool{}
	for _, s := range cur.Slaves {
		curSlaves[s.Name] = true
	}
	for _, s := range old.Slaves {
		if !curSlaves[s.Name] {
			add(BondSlaveRemoved, s.Name, "", "")
		}
	}
	for _, s := range cur.Slaves {
		o, ok := oldSlaves[s.Name]
		if !ok {
			add(BondSlaveAdded, s.Name, "", upDown(s.LinkUp))
			continue
		}
		if o.LinkUp != s.LinkUp {
			add(BondSlaveLink, s.Name, upDown(o.LinkUp), upDown(s.LinkUp))
		}
	}
	if old.ActiveSlave != cur.ActiveSlave {
		add(BondActiveChanged, cur.ActiveSlave, old.ActiveSlave, cur.ActiveSlave)
	}
	if old.OperUp != cur.OperUp {
		add(BondOper, "", upDown(old.OperUp), upDown(cur.OperUp))
	}
	return ev
}

// WatchBond reads the bond every interval and calls fn for each change
// until ctx ends. The first read is the baseline and reports nothing; a
// read error is passed to onErr (if not nil) and the watch goes on. It
// polls rather than subscribing to netlink notifications so that it works
// the same over every Bonds implementation (the fake included); at the
// bond's miimon scale (100 ms) a 200 ms poll costs next to nothing.
func WatchBond(ctx context.Context, b Bonds, name string, interval time.Duration, fn func(BondEvent), onErr func(error)) error {
	if interval <= 0 {
		interval = 200 * time.Millisecond
	}
	var last BondStatus
	have := false
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		st, err := b.Bond(name)
		if err != nil {
			if onErr != nil {
				onErr(fmt.Errorf("watch bond %s: %w", name, err))
			}
		} else {
			if have {
				for _, e := range DiffBond(last, st) {
					fn(e)
				}
			}
			last, have = st, true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
