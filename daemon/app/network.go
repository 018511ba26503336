package app

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sipedge/sipedge/hal"
)

// setupNetwork applies the network: section through the HAL: each bond
// is created (idempotently) with its slaves, the management address is
// added, and every bond is watched: slave link changes and active-slave
// moves become events. With no network: section (the embedded default on
// a development machine) it touches nothing.
func (a *App) setupNetwork(ctx context.Context) error {
	cfg := a.Config()
	nw := cfg.Network
	if len(nw.Bonds) == 0 && nw.Management == nil {
		return nil
	}
	n, err := hal.OpenNetwork()
	if err != nil {
		return fmt.Errorf("network: %w", err)
	}
	a.onStop(func() { n.Close() })
	for _, b := range nw.Bonds {
		bc := hal.BondConfig{Name: b.Name, Mode: hal.BondMode(b.Mode), MIIMon: b.MIIMon.D(), Primary: b.Primary, Slaves: b.Slaves}
		if err := n.CreateBond(bc); err != nil {
			return fmt.Errorf("network: %w", err)
		}
		a.log.Info("bond created", "bond", b.Name, "mode", b.Mode, "miimon", b.MIIMon.D(), "primary", b.Primary, "slaves", strings.Join(b.Slaves, ","))
	}
	if m := nw.Management; m != nil {
		if err := n.SetLinkUp(m.Interface, true); err != nil {
			return fmt.Errorf("network: management: %w", err)
		}
		if err := n.AddAddress(m.Interface, m.Address); err != nil {
			return fmt.Errorf("network: management: %w", err)
		}
		a.log.Info("management address", "interface", m.Interface, "address", m.Address)
	}
	names := make([]string, 0, len(nw.Bonds))
	for _, b := range nw.Bonds {
		name := b.Name
		names = append(names, name)
		a.add("bond "+name, func(ctx context.Context) error {
			summary := func() {
				if st, err := n.Bond(name); err == nil {
					a.log.Info("bond status", "bond", name, "summary", BondSummary(st))
				}
			}
			summary()
			err := hal.WatchBond(ctx, n, name, 200*time.Millisecond, func(e hal.BondEvent) {
				a.events.Event("bond."+string(e.Kind), name, e.String())
				a.log.Info("bond status", "bond", name, "summary", BondSummary(e.Status))
			}, func(err error) { a.log.Warn("bond watch", "err", err) })
			if ctx.Err() != nil {
				return nil
			}
			return err
		})
	}
	a.addStatus("network", func() any {
		var out []hal.BondStatus
		for _, name := range names {
			if st, err := n.Bond(name); err == nil {
				out = append(out, st)
			}
		}
		return out
	})
	return nil
}

// BondSummary renders a bond on one line:
// "mode=active-backup up=true active=eth0 slaves=eth0:up,eth1:down".
func BondSummary(st hal.BondStatus) string {
	var s []string
	for _, sl := range st.Slaves {
		state := "down"
		if sl.LinkUp {
			state = "up"
		}
		s = append(s, sl.Name+":"+state)
	}
	active := st.ActiveSlave
	if active == "" {
		active = "none"
	}
	return fmt.Sprintf("mode=%s up=%v active=%s slaves=%s", st.Mode, st.OperUp, active, strings.Join(s, ","))
}
