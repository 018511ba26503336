package hal

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/jsimonetti/rtnetlink/v2/driver"
	"golang.org/x/sys/unix"
)

func driverMode(m BondMode) (driver.BondMode, error) {
	switch m {
	case BondActiveBackup, "":
		return driver.BondModeActiveBackup, nil
	case Bond8023AD:
		return driver.BondMode802_3AD, nil
	}
	return 0, fmt.Errorf("unsupported bond mode %q", m)
}

func halMode(m driver.BondMode) BondMode {
	switch m {
	case driver.BondModeActiveBackup:
		return BondActiveBackup
	case driver.BondMode802_3AD:
		return Bond8023AD
	}
	return BondMode(m.String())
}

// CreateBond creates cfg.Name if absent (kernel "bonding" module loaded
// with max_bonds=0), sets mode and miimon, enslaves the NICs (each taken
// down first, as the driver wants), sets the primary and brings
// everything up. Run again on an existing bond it only adds what is
// missing; changing the mode of a bond that has slaves is refused.
func (n *LinuxNetwork) CreateBond(cfg BondConfig) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.createBond(cfg); err != nil {
		return fmt.Errorf("hal: bond %s: %w", cfg.Name, err)
	}
	return nil
}

func (n *LinuxNetwork) createBond(cfg BondConfig) error {
	mode, err := driverMode(cfg.Mode)
	if err != nil {
		return err
	}
	miimon := uint32(cfg.MIIMon / time.Millisecond)
	if cfg.MIIMon == 0 {
		miimon = 100
	}
	bond, err := n.linkByName(cfg.Name)
	switch {
	case errors.Is(err, errNoLink):
		err = n.conn.Link.New(&rtnetlink.LinkMessage{
			Family: unix.AF_UNSPEC,
			Attributes: &rtnetlink.LinkAttributes{
				Name: cfg.Name,
				Info: &rtnetlink.LinkInfo{Kind: "bond", Data: &driver.Bond{Mode: mode, Miimon: &miimon}},
			},
		})
		if err != nil {
			if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("create (is the bonding module loaded?): %w: %w", err, ErrUnsupported)
			}
			return fmt.Errorf("create: %w", err)
		}
		if bond, err = n.linkByName(cfg.Name); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		cur, ok := bondData(bond)
		if !ok {
			return fmt.Errorf("exists and is not a bond")
		}
		if cur.Mode != mode || cur.Miimon == nil || *cur.Miimon != miimon {
			if cur.Mode != mode && n.hasSlaves(bond.Index) {
				return fmt.Errorf("exists in mode %s with slaves; will not change it to %s", halMode(cur.Mode), halMode(mode))
			}
			if cur.Mode != mode {
				if err := n.setUp(cfg.Name, false); err != nil {
					return err
				}
			}
			set := &driver.Bond{Mode: driver.BondModeUnknown, Miimon: &miimon} // Unknown: leave the mode alone
			if cur.Mode != mode {
				set.Mode = mode
			}
			err := n.conn.Link.Set(&rtnetlink.LinkMessage{
				Family: unix.AF_UNSPEC, Index: bond.Index,
				Attributes: &rtnetlink.LinkAttributes{
					Info: &rtnetlink.LinkInfo{Kind: "bond", Data: set},
				},
			})
			if err != nil {
				return fmt.Errorf("set mode/miimon: %w", err)
			}
		}
	}
	for _, s := range cfg.Slaves {
		l, err := n.linkByName(s)
		if err != nil {
			return fmt.Errorf("slave: %w", err)
		}
		if l.Attributes.Master != nil && *l.Attributes.Master == bond.Index {
			continue
		}
		if err := n.setUp(s, false); err != nil {
			return fmt.Errorf("slave %s down: %w", s, err)
		}
		if err := n.conn.Link.SetMaster(l.Index, bond.Index, nil); err != nil {
			return fmt.Errorf("enslave %s: %w", s, err)
		}
		if err := n.setUp(s, true); err != nil {
			return fmt.Errorf("slave %s up: %w", s, err)
		}
	}
	if cfg.Primary != "" && mode == driver.BondModeActiveBackup {
		p, err := n.linkByName(cfg.Primary)
		if err != nil {
			return fmt.Errorf("primary: %w", err)
		}
		idx := p.Index
		err = n.conn.Link.Set(&rtnetlink.LinkMessage{
			Family: unix.AF_UNSPEC, Index: bond.Index,
			Attributes: &rtnetlink.LinkAttributes{
				Info: &rtnetlink.LinkInfo{Kind: "bond", Data: &driver.Bond{Mode: driver.BondModeUnknown, Primary: &idx}},
			},
		})
		if err != nil {
			return fmt.Errorf("set primary %s: %w", cfg.Primary, err)
		}
	}
	if err := n.setUp(cfg.Name, true); err != nil {
		return fmt.Errorf("up: %w", err)
	}
	return nil
}

func bondData(l rtnetlink.LinkMessage) (*driver.Bond, bool) {
	if l.Attributes == nil || l.Attributes.Info == nil || l.Attributes.Info.Kind != "bond" {
		return nil, false
	}
	b, ok := l.Attributes.Info.Data.(*driver.Bond)
	return b, ok && b != nil
}

func (n *LinuxNetwork) hasSlaves(index uint32) bool {
	links, err := n.conn.Link.List()
	if err != nil {
		return true
	}
	for _, l := range links {
		if l.Attributes != nil && l.Attributes.Master != nil && *l.Attributes.Master == index {
			return true
		}
	}
	return false
}

// Bond reads a bond back: mode, miimon, active slave and every slave's
// MII state, slaves in interface index order.
func (n *LinuxNetwork) Bond(name string) (BondStatus, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	links, err := n.conn.Link.List()
	if err != nil {
		return BondStatus{}, fmt.Errorf("hal: bond %s: list links: %w", name, err)
	}
	var bond *rtnetlink.LinkMessage
	for i := range links {
		if links[i].Attributes != nil && links[i].Attributes.Name == name {
			bond = &links[i]
		}
	}
	if bond == nil {
		return BondStatus{}, fmt.Errorf("hal: bond %s: %w", name, errNoLink)
	}
	bd, ok := bondData(*bond)
	if !ok {
		return BondStatus{}, fmt.Errorf("hal: %s is not a bond", name)
	}
	st := BondStatus{Name: name, Mode: halMode(bd.Mode), OperUp: linkState(*bond).OperUp}
	if bd.Miimon != nil {
		st.MIIMon = time.Duration(*bd.Miimon) * time.Millisecond
	}
	var active uint32
	if bd.ActiveSlave != nil {
		active = *bd.ActiveSlave
	}
	for _, l := range links {
		a := l.Attributes
		if a == nil || a.Master == nil || *a.Master != bond.Index {
			continue
		}
		s := SlaveStatus{Name: a.Name}
		if a.Info != nil {
			if bs, ok := a.Info.SlaveData.(*driver.BondSlave); ok && bs != nil {
				s.LinkUp = bs.MiiStatus != nil && *bs.MiiStatus == driver.BondLinkUp
				if bd.Mode == driver.BondModeActiveBackup {
					s.Active = active != 0 && l.Index == active
				} else {
					s.Active = bs.State != nil && *bs.State == driver.BondStateActive
				}
			}
		}
		if active != 0 && l.Index == active {
			st.ActiveSlave = a.Name
		}
		st.Slaves = append(st.Slaves, s)
	}
	return st, nil
}
