package failover

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"sort"
	"time"

	"github.com/sipedge/sipedge/hal"
)

// The relay makes an ordered handover lossless without the two boxes
// ever holding the VIP together. From the holder's delete to the moment
// a client has the new holder's gratuitous ARP, the client still sends
// to the old holder's MAC address; without the relay those packets are
// dropped there (about 1 handover in 10 lost a 10 ms probe). For
// RelayFor after a release, the releasing box forwards packets that
// arrive on the VIP's interface for the VIP: the kernel routes them back
// out of the same interface, holds them while it resolves the VIP by
// ARP, and delivers them when the new holder answers or announces.
//
// What the box changes, only on that interface and only for the window:
//   - policy rules first: "iif IF to VIP lookup main" and "iif IF
//     blackhole" (hal.RelayRulePriority), so nothing but the VIP is ever
//     forwarded: the box does not become a router;
//   - send_redirects off (interface and all: the kernel ORs them), so
//     clients are not sent ICMP redirects;
//   - the VIP's neighbour entry forgotten, so it is resolved afresh (two
//     boxes relaying to each other's stale entries would loop a packet);
//   - forwarding on for the interface (not net.ipv4.ip_forward).
//
// Closing restores the sysctls to the values read before, then removes
// the rules. The original values are persisted (Options.Persist) before
// they are first changed; at start, rules left by a crashed daemon mark
// a window that was open, and the persisted values are restored.
//
// Not done: IPv6 VIPs (enabling IPv6 forwarding on an interface makes
// the box a router there: it stops taking router advertisements and
// advertises itself), and interfaces that already forward (a box that is
// a router is left alone).

// DefaultRelayFor is how long a releasing box relays packets for the VIP.
const DefaultRelayFor = 3 * time.Second

// stopLinger: at a clean stop, how long the box keeps relaying after it
// has heard the peer take the VIP (the peer announces before it says so).
const stopLinger = 300 * time.Millisecond

const (
	sysAllRedirects = "net/ipv4/conf/all/send_redirects"
)

func sysForwarding(ifname string) string { return "net/ipv4/conf/" + ifname + "/forwarding" }
func sysRedirects(ifname string) string  { return "net/ipv4/conf/" + ifname + "/send_redirects" }

// relay tracks the open relay windows. It is used under Manager.mu.
type relay struct {
	hal     hal.Relayer // nil: no relay
	log     *slog.Logger
	persist Persist
	dur     time.Duration

	record map[string]string // original values as persisted
	open   map[string]*relayWindow
	global map[string]string // originals of the "all" sysctls while a window is open
	skip   map[string]string // interfaces where relaying is not done, and why (logged once)
}

type relayWindow struct {
	orig  map[string]string
	addrs []netip.Addr
	until time.Time
}

// relayRecord is what is persisted under PersistRelay.
type relayRecord struct {
	Sysctls map[string]string `json:"sysctls"`
}

func newRelay(r hal.Relayer, log *slog.Logger, p Persist, dur time.Duration) *relay {
	if dur <= 0 {
		r = nil
	}
	return &relay{hal: r, log: log, persist: p, dur: dur, record: map[string]string{},
		open: map[string]*relayWindow{}, skip: map[string]string{}}
}

func (r *relay) enabled() bool { return r != nil && r.hal != nil }

// relayable reports whether g's VIP can be relayed (IPv4).
func relayable(g *group) bool { return g.opt.Address.Addr().Unmap().Is4() }

// recover runs at start: it removes relay rules a crashed daemon left,
// restores the sysctls it had changed, and records the current values.
func (r *relay) recover(groups []*group) error {
	if !r.enabled() {
		return nil
	}
	byIf := map[string][]netip.Addr{}
	var ifaces []string
	for _, g := range groups {
		if !relayable(g) {
			continue
		}
		if _, ok := byIf[g.opt.Interface]; !ok {
			ifaces = append(ifaces, g.opt.Interface)
		}
		byIf[g.opt.Interface] = append(byIf[g.opt.Interface], g.opt.Address.Addr())
	}
	if len(ifaces) == 0 {
		return nil
	}
	var rec relayRecord
	if r.persist != nil {
		if _, err := r.persist.Load(PersistRelay, &rec); err != nil {
			r.log.Error("relay: cannot read the recorded sysctl values", "err", err)
		}
	}
	var errs []error
	crashed := map[string]bool{}
	for _, ifn := range ifaces {
		addrs := byIf[ifn]
		for i, a := range addrs {
			existed, err := r.hal.DelRelayRules(ifn, a, i == len(addrs)-1)
			if err != nil {
				errs = append(errs, err)
			}
			if existed {
				crashed[ifn] = true
			}
		}
	}
	for _, ifn := range ifaces {
		if !crashed[ifn] {
			continue
		}
		// The drop rule is gone already; restore forwarding first anyway
		// (the order only matters while the rules are in place).
		keys := []string{sysForwarding(ifn), sysRedirects(ifn), sysAllRedirects}
		for _, k := range keys {
			v, ok := rec.Sysctls[k]
			if !ok {
				// Nothing recorded: the kernel's defaults are the safe
				// values (no forwarding, redirects on).
				v = map[string]string{sysForwarding(ifn): "0"}[k]
				if v == "" {
					v = "1"
				}
			}
			if err := r.hal.SetSysctl(k, v); err != nil {
				errs = append(errs, err)
			}
		}
		r.log.Warn("relay: a previous run left a relay window open (crash?); sysctls restored", "interface", ifn, "recorded", rec.Sysctls)
	}
	cur := map[string]string{}
	for _, ifn := range ifaces {
		for _, k := range []string{sysForwarding(ifn), sysRedirects(ifn), sysAllRedirects} {
			v, err := r.hal.Sysctl(k)
			if err != nil {
				r.skip[ifn] = err.Error()
				continue
			}
			cur[k] = v
		}
	}
	r.record = rec.Sysctls
	if err := r.save(cur); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// save persists vals merged into the record if that changes it.
func (r *relay) save(vals map[string]string) error {
	merged := maps.Clone(r.record)
	if merged == nil {
		merged = map[string]string{}
	}
	changed := false
	for k, v := range vals {
		if old, ok := merged[k]; !ok || old != v {
			merged[k], changed = v, true
		}
	}
	if !changed {
		return nil
	}
	if r.persist != nil {
		if err := r.persist.Save(PersistRelay, relayRecord{Sysctls: merged}); err != nil {
			return fmt.Errorf("relay: record sysctl values: %w", err)
		}
	}
	r.record = merged
	return nil
}

// openFor opens (or extends) the relay window for g's VIP until
// now+dur. It is called just before the VIP is deleted. On error the
// window stays closed and the handover goes on without it.
func (r *relay) openFor(g *group, now time.Time) {
	if !r.enabled() || !relayable(g) {
		return
	}
	ifn, addr := g.opt.Interface, g.opt.Address.Addr().Unmap()
	if why, ok := r.skip[ifn]; ok {
		r.log.Debug("relay: not on this interface", "interface", ifn, "why", why)
		return
	}
	if err := r.hal.ForgetNeighbor(ifn, addr); err != nil {
		r.log.Warn("relay: forget neighbour", "interface", ifn, "address", addr, "err", err)
	}
	if w := r.open[ifn]; w != nil {
		if !containsAddr(w.addrs, addr) {
			if err := r.hal.AddRelayRules(ifn, addr); err != nil {
				r.log.Error("relay: not relaying (rules)", "group", g.opt.Name, "err", err)
				return
			}
			w.addrs = append(w.addrs, addr)
		}
		w.until = now.Add(r.dur)
		return
	}
	if err := r.openWindow(ifn, addr, now); err != nil {
		r.log.Error("relay: not relaying this handover", "group", g.opt.Name, "interface", ifn, "err", err)
	}
}

func (r *relay) openWindow(ifn string, addr netip.Addr, now time.Time) error {
	orig := map[string]string{}
	for _, k := range []string{sysForwarding(ifn), sysRedirects(ifn)} {
		v, err := r.hal.Sysctl(k)
		if err != nil {
			return err
		}
		orig[k] = v
	}
	if orig[sysForwarding(ifn)] != "0" {
		r.skip[ifn] = "the interface already forwards (the box is a router)"
		r.log.Info("relay: interface already forwards; not relaying on it", "interface", ifn)
		return nil
	}
	global := r.global
	if len(r.open) == 0 {
		v, err := r.hal.Sysctl(sysAllRedirects)
		if err != nil {
			return err
		}
		global = map[string]string{sysAllRedirects: v}
	}
	vals := maps.Clone(orig)
	maps.Copy(vals, global)
	if err := r.save(vals); err != nil {
		return err // never change what we could not record
	}
	if err := r.hal.AddRelayRules(ifn, addr); err != nil {
		return err
	}
	w := &relayWindow{orig: orig, addrs: []netip.Addr{addr}, until: now.Add(r.dur)}
	set := [][2]string{{sysRedirects(ifn), "0"}, {sysAllRedirects, "0"}, {sysForwarding(ifn), "1"}}
	for i, kv := range set {
		if err := r.hal.SetSysctl(kv[0], kv[1]); err != nil {
			for _, undo := range set[:i] {
				if v, ok := vals[undo[0]]; ok {
					_ = r.hal.SetSysctl(undo[0], v)
				}
			}
			_, _ = r.hal.DelRelayRules(ifn, addr, true) // no window on ifn: the drop rule goes too
			return err
		}
	}
	r.global = global
	r.open[ifn] = w
	r.log.Debug("relay: window open", "interface", ifn, "address", addr, "until", w.until)
	return nil
}

func containsAddr(s []netip.Addr, a netip.Addr) bool {
	for _, x := range s {
		if x == a {
			return true
		}
	}
	return false
}

// expire closes the windows that ended by now.
func (r *relay) expire(now time.Time) {
	if r == nil {
		return
	}
	for _, ifn := range r.ifaces() {
		if !now.Before(r.open[ifn].until) {
			r.close(ifn)
		}
	}
}

// closeAll closes every window (daemon stopping).
func (r *relay) closeAll() {
	if r == nil {
		return
	}
	for _, ifn := range r.ifaces() {
		r.close(ifn)
	}
}

func (r *relay) ifaces() []string {
	var out []string
	for ifn := range r.open {
		out = append(out, ifn)
	}
	sort.Strings(out)
	return out
}

// close restores ifn's sysctls (forwarding first), the global ones when
// it was the last window, then removes the rules.
func (r *relay) close(ifn string) {
	w := r.open[ifn]
	if w == nil {
		return
	}
	delete(r.open, ifn)
	for _, k := range []string{sysForwarding(ifn), sysRedirects(ifn)} {
		if err := r.hal.SetSysctl(k, w.orig[k]); err != nil {
			r.log.Error("relay: restore sysctl", "name", k, "value", w.orig[k], "err", err)
		}
	}
	if len(r.open) == 0 {
		for k, v := range r.global {
			if err := r.hal.SetSysctl(k, v); err != nil {
				r.log.Error("relay: restore sysctl", "name", k, "value", v, "err", err)
			}
		}
		r.global = nil
	}
	for i, a := range w.addrs {
		if _, err := r.hal.DelRelayRules(ifn, a, i == len(w.addrs)-1); err != nil {
			r.log.Error("relay: remove rules", "interface", ifn, "err", err)
		}
	}
	r.log.Debug("relay: window closed", "interface", ifn)
}

// next is when the earliest window ends (zero: none open).
func (r *relay) next() time.Time {
	var t time.Time
	if r == nil {
		return t
	}
	for _, w := range r.open {
		if t.IsZero() || w.until.Before(t) {
			t = w.until
		}
	}
	return t
}

// isOpen reports whether any window is open.
func (r *relay) isOpen() bool { return r != nil && len(r.open) > 0 }
