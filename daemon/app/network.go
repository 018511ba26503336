package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/sipedge/sipedge/daemon/config"
	"github.com/sipedge/sipedge/daemon/store"
	"github.com/sipedge/sipedge/hal"
)

// keyManagementApplied (State bucket) is the management address this
// box last put on an interface, so that a later change removes it.
const keyManagementApplied = "network.management.applied"

// netHAL is what the network subsystem needs from the HAL.
type netHAL interface {
	hal.Addresses
	hal.Links
	hal.Bonds
	hal.Routes
	hal.LinkLister
}

// setupNetwork applies the network: section through the HAL: each bond
// is created (idempotently) with its slaves, the management address is
// added and its gateway made the default route, and every bond is
// watched: slave link changes and active-slave moves become events.
//
// The management address in force is the runtime change stored by
// management.set (console, ctl, web) when there is one, else the file's.
// It is applied here, at the daemon's start: a change made while the
// daemon runs is shown as pending in `ctl network` and the status, and
// takes effect at the next start (daemon restart or reboot). A runtime
// change that cannot be applied falls back to the file's address, so
// that a typo does not cut the box off its management network.
//
// With no network: section and no runtime change (the embedded default
// on a development machine) it changes nothing, but `ctl network` still
// reads the links back.
func (a *App) setupNetwork(ctx context.Context) error {
	cfg := a.Config()
	nw := cfg.Network
	var rt *Management
	var m Management
	if found, err := a.store.Get(store.Runtime, keyManagement, &m); err != nil {
		a.log.Warn("network: runtime management address unreadable; using the file's", "err", err)
	} else if found {
		rt = &m
	}
	a.setupResolvConf()
	ns := &netState{a: a}
	// ctl network: this subsystem's view, with the watchdog's (its own
	// method, registered by watchdog.go) beside it.
	a.ctl.Handle("network", "bonds (mode, active slave, slaves' MII state), links, management address and default route read back through the HAL; the watchdog's state", func(ctx context.Context, _ json.RawMessage) (any, error) {
		out := struct {
			NetworkStatus
			Watchdog any `json:"watchdog,omitempty"`
		}{NetworkStatus: ns.status()}
		if w, err := a.ctl.Call(ctx, "watchdog", nil); err == nil {
			out.Watchdog = w
		}
		return out, nil
	})
	unmanaged := len(nw.Bonds) == 0 && nw.Management == nil && rt == nil
	n, err := hal.OpenNetwork()
	if err != nil {
		if unmanaged {
			ns.err = err.Error()
			a.log.Info("network: no HAL on this system", "err", err)
			return nil
		}
		return fmt.Errorf("network: %w", err)
	}
	a.onStop(func() { n.Close() })
	ns.hal = n
	a.addStatus("network", func() any { return ns.status() })
	if err := a.metrics().Register(newBondCollector(ns)); err != nil {
		a.log.Warn("bond metrics not registered", "err", err)
	}
	if unmanaged {
		return nil
	}
	for _, b := range nw.Bonds {
		bc := hal.BondConfig{Name: b.Name, Mode: hal.BondMode(b.Mode), MIIMon: b.MIIMon.D(), Primary: b.Primary, Slaves: b.Slaves}
		if err := n.CreateBond(bc); err != nil {
			return fmt.Errorf("network: %w", err)
		}
		ns.bonds = append(ns.bonds, b.Name)
		a.log.Info("bond created", "bond", b.Name, "mode", b.Mode, "miimon", b.MIIMon.D(), "primary", b.Primary, "slaves", strings.Join(b.Slaves, ","))
	}
	if err := ns.applyManagement(nw.Management, rt); err != nil {
		return err
	}
	for _, name := range ns.bonds {
		a.add("bond "+name, func(ctx context.Context) error {
			if st, err := n.Bond(name); err == nil {
				a.log.Info("bond status", "bond", name, "summary", BondSummary(st))
			}
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
	return nil
}

// netState is what the network subsystem applied, for status.
type netState struct {
	a     *App
	hal   netHAL // nil: none on this system (err says why)
	err   string
	bonds []string

	mu      sync.Mutex
	applied *ManagementView // nil: none applied
}

// ManagementView is the management address in force.
type ManagementView struct {
	Interface string `json:"interface"`
	Address   string `json:"address"`
	Gateway   string `json:"gateway,omitempty"`
	// Source is "configuration" (the file) or "runtime" (management.set).
	Source string `json:"source"`
	// Error says what could not be applied (a gateway the kernel refused,
	// a runtime change that fell back to the file's address).
	Error string `json:"error,omitempty"`
	// Pending is a runtime change stored after the start: it takes
	// effect at the next daemon start.
	Pending *PendingManagement `json:"pending,omitempty"`
}

// PendingManagement is a stored change not yet in force.
type PendingManagement struct {
	Interface string    `json:"interface"`
	Address   string    `json:"address"`
	Gateway   string    `json:"gateway,omitempty"`
	Set       time.Time `json:"set"`
	Note      string    `json:"note"`
}

// applyManagement puts the management address in force (runtime change,
// else the file's) on its interface, removes the one applied before if
// it differs, and makes the gateway the default route.
func (ns *netState) applyManagement(file *config.Management, rt *Management) error {
	a := ns.a
	var want *Management
	source := "configuration"
	var fallbackErr string
	if file != nil {
		want = &Management{Interface: file.Interface, Address: file.Address, Gateway: file.Gateway}
	}
	if rt != nil {
		r := *rt
		if r.Interface == "" && file != nil {
			r.Interface = file.Interface
		}
		if err := ns.put(&r); err != nil {
			fallbackErr = fmt.Sprintf("runtime management address %s on %q not applied (%v); using the configuration file's", r.Address, r.Interface, err)
			a.log.Error("network: "+fallbackErr, "err", err)
			a.events.Event("network.management", a.Config().Node.Name, fallbackErr)
		} else {
			want, source = &r, "runtime"
		}
	}
	if want == nil {
		return nil
	}
	if source == "configuration" {
		if err := ns.put(want); err != nil {
			return fmt.Errorf("network: management: %w", err)
		}
	}
	// The address applied by an earlier start, if another, goes away.
	var prev Management
	if found, _ := a.store.Get(store.State, keyManagementApplied, &prev); found && (prev.Address != want.Address || prev.Interface != want.Interface) {
		if err := ns.hal.DelAddress(prev.Interface, prev.Address); err != nil {
			a.log.Warn("network: removing the previous management address", "interface", prev.Interface, "address", prev.Address, "err", err)
		} else {
			a.log.Info("network: previous management address removed", "interface", prev.Interface, "address", prev.Address)
		}
	}
	// And so does the file's, when a runtime change replaces it, unless a
	// listener of the file (web, SIP, cluster) is bound to it: without it
	// this start would fail and the box reboot in a loop, so it is put
	// beside the runtime one.
	if source == "runtime" && file != nil && (file.Address != want.Address || file.Interface != want.Interface) {
		if l := listenersOn(a.Config(), file.Address.Addr()); len(l) > 0 {
			a.log.Warn("network: the configuration file's management address is kept beside the runtime one: listeners use it", "address", file.Address, "listeners", strings.Join(l, ","))
			if err := ns.put(&Management{Interface: file.Interface, Address: file.Address}); err != nil {
				a.log.Error("network: the configuration file's management address", "err", err)
			}
		} else {
			ns.hal.DelAddress(file.Interface, file.Address)
		}
	}
	if err := a.store.Put(store.State, keyManagementApplied, want); err != nil {
		a.log.Warn("network: recording the applied management address", "err", err)
	}
	v := &ManagementView{Interface: want.Interface, Address: want.Address.String(), Source: source, Error: fallbackErr}
	if want.Gateway.IsValid() {
		v.Gateway = want.Gateway.String()
		if err := ns.hal.SetDefaultRoute(want.Interface, want.Gateway); err != nil {
			// Not fatal: the box still serves its LAN; status says why.
			v.Error = strings.TrimPrefix(strings.Join([]string{v.Error, "gateway: " + err.Error()}, "; "), "; ")
			a.log.Error("network: management gateway not applied", "gateway", want.Gateway, "interface", want.Interface, "err", err)
			a.events.Event("network.gateway", a.Config().Node.Name, fmt.Sprintf("default route via %s dev %s refused: %v", want.Gateway, want.Interface, err))
		} else {
			a.log.Info("management gateway", "interface", want.Interface, "gateway", want.Gateway)
		}
	}
	a.log.Info("management address", "interface", want.Interface, "address", want.Address, "source", source)
	ns.mu.Lock()
	ns.applied = v
	ns.mu.Unlock()
	return nil
}

// listenersOn names the configured listeners bound to ip.
func listenersOn(cfg *config.Config, ip netip.Addr) []string {
	var out []string
	has := func(name, listen string) {
		// "IP:port", or "transport:IP:port" for SIP.
		ap, err := netip.ParseAddrPort(listen)
		if _, rest, ok := strings.Cut(listen, ":"); err != nil && ok {
			ap, err = netip.ParseAddrPort(rest)
		}
		if err == nil && ap.Addr() == ip {
			out = append(out, name)
		}
	}
	has("web.listen", cfg.Web.Listen)
	if cfg.SIP != nil {
		for _, l := range cfg.SIP.Listen {
			has("sip.listen", l)
		}
	}
	if cfg.Cluster != nil {
		has("cluster.listen", cfg.Cluster.Listen)
	}
	return out
}

// put brings the interface up and adds the address.
func (ns *netState) put(m *Management) error {
	if m.Interface == "" {
		return errors.New("no interface")
	}
	if !m.Address.IsValid() {
		return errors.New("no address")
	}
	if err := ns.hal.SetLinkUp(m.Interface, true); err != nil {
		return err
	}
	return ns.hal.AddAddress(m.Interface, m.Address)
}

// NetworkStatus is `ctl network` and the status' network section.
type NetworkStatus struct {
	Bonds         []BondView      `json:"bonds"`
	Links         []LinkView      `json:"links"`
	Management    *ManagementView `json:"management,omitempty"`
	DefaultRoutes []RouteView     `json:"default_routes"`
	DNS           *DNSView        `json:"dns,omitempty"`
	Errors        []string        `json:"errors,omitempty"`
}

// BondView is a bond read back from the kernel.
type BondView struct {
	Name        string      `json:"name"`
	Mode        string      `json:"mode"`
	MIIMon      string      `json:"miimon"`
	Up          bool        `json:"up"`
	ActiveSlave string      `json:"active_slave"`
	Slaves      []SlaveView `json:"slaves"`
}

// SlaveView is one slave of a bond.
type SlaveView struct {
	Name   string `json:"name"`
	MIIUp  bool   `json:"mii_up"`
	Active bool   `json:"active"`
}

// LinkView is one interface.
type LinkView struct {
	Name    string `json:"name"`
	MAC     string `json:"mac,omitempty"`
	AdminUp bool   `json:"admin_up"`
	OperUp  bool   `json:"oper_up"`
	MTU     int    `json:"mtu"`
}

// RouteView is a default route.
type RouteView struct {
	Interface string `json:"interface"`
	Gateway   string `json:"gateway"`
}

// bondViews reads every configured bond back through the HAL.
func (ns *netState) bondViews() (views []BondView, errs []string) {
	for _, name := range ns.bonds {
		b, err := ns.hal.Bond(name)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		v := BondView{Name: b.Name, Mode: string(b.Mode), MIIMon: b.MIIMon.String(), Up: b.OperUp, ActiveSlave: b.ActiveSlave, Slaves: []SlaveView{}}
		for _, s := range b.Slaves {
			v.Slaves = append(v.Slaves, SlaveView{Name: s.Name, MIIUp: s.LinkUp, Active: s.Active})
		}
		views = append(views, v)
	}
	return views, errs
}

func (ns *netState) status() NetworkStatus {
	st := NetworkStatus{Bonds: []BondView{}, Links: []LinkView{}, DefaultRoutes: []RouteView{}, DNS: ns.a.dnsStatus()}
	if ns.hal == nil {
		st.Errors = []string{ns.err}
		return st
	}
	bonds, errs := ns.bondViews()
	st.Bonds = append(st.Bonds, bonds...)
	st.Errors = append(st.Errors, errs...)
	if links, err := ns.hal.ListLinks(); err != nil {
		st.Errors = append(st.Errors, err.Error())
	} else {
		for _, l := range links {
			st.Links = append(st.Links, LinkView{Name: l.Name, MAC: l.HardwareAddr.String(), AdminUp: l.AdminUp, OperUp: l.OperUp, MTU: l.MTU})
		}
	}
	if rs, err := ns.hal.DefaultRoutes(); err != nil {
		st.Errors = append(st.Errors, err.Error())
	} else {
		for _, r := range rs {
			st.DefaultRoutes = append(st.DefaultRoutes, RouteView{Interface: r.Interface, Gateway: r.Gateway.String()})
		}
	}
	ns.mu.Lock()
	if ns.applied != nil {
		v := *ns.applied
		st.Management = &v
	}
	ns.mu.Unlock()
	// A runtime change stored since the start is pending.
	var m Management
	if found, err := ns.a.store.Get(store.Runtime, keyManagement, &m); err == nil && found {
		if st.Management == nil || st.Management.Source != "runtime" || st.Management.Address != m.Address.String() ||
			(m.Interface != "" && st.Management.Interface != m.Interface) || st.Management.Gateway != addrString(m.Gateway) {
			if st.Management == nil {
				st.Management = &ManagementView{Source: "none"}
			}
			st.Management.Pending = &PendingManagement{Interface: m.Interface, Address: m.Address.String(), Gateway: addrString(m.Gateway), Set: m.Set,
				Note: "stored; takes effect at the next daemon start (restart or reboot)"}
		}
	}
	return st
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
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
