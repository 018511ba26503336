package balancer

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sipedge/sipedge/daemon/resolve"
)

// A Core whose configured address is a DNS name is a group: the name is
// resolved per RFC 3263 (SRV, then A/AAAA) off the packet path, by a
// resolve.Watcher that asks again when the answer's TTL runs out, and
// every target becomes a Core of its own ("NAME/IP:port": probes, counts,
// state), grouped under the configured name. When the name stops
// resolving the last good answer stays in force for the Watcher's stale
// period, and the group says so (CoreGroups, the metrics, a log line).
// Names from the wire are never resolved.
//
// SRV priorities become ranks: the group's lowest priority is rank 0,
// the next 1, and so on; new calls go to the lowest rank that has a
// usable Core (a Core from an IP address has rank 0). SRV weights become
// the Cores' weights (0 counts as 1), which the weighted and call-hash
// algorithms follow, as any Core's weight.

// coreGroup is one configured Core given by name.
type coreGroup struct {
	cfg    CoreConfig
	ep     coreEndpoint
	w      *resolve.Watcher
	cancel context.CancelFunc // stops w (nil until started)

	mu      sync.Mutex
	members []string // its Cores' names, in the pool
}

// memberName is the pool name of a group's target.
func memberName(group string, t resolve.Target) string {
	return group + "/" + t.Addr.String()
}

// addGroup registers a Core given by name; its Watcher starts with the
// balancer (or at once when it runs).
func (b *Balancer) addGroup(cfg CoreConfig, ep coreEndpoint) error {
	b.groupsMu.Lock()
	defer b.groupsMu.Unlock()
	if _, ok := b.groups[cfg.Name]; ok || b.pool.get(cfg.Name) != nil {
		return fmt.Errorf("core %q exists", cfg.Name)
	}
	if b.opt.DNS == nil {
		return fmt.Errorf("core %q: %s is a DNS name and no DNS server is configured (network.dns or /etc/resolv.conf)", cfg.Name, ep.host)
	}
	g := &coreGroup{cfg: cfg, ep: ep}
	w, err := resolve.NewWatcher(b.opt.DNS, resolve.WatchConfig{
		Name: ep.host, Transport: ep.transport, Port: ep.port,
		MinTTL:   b.opt.DNSMinTTL,
		OnChange: func(ts []resolve.Target) { b.applyTargets(g, ts) },
		Log:      b.log.With("core", cfg.Name),
	})
	if err != nil {
		return fmt.Errorf("core %q: %w", cfg.Name, err)
	}
	g.w = w
	b.groups[cfg.Name] = g
	if b.started {
		g.start(b.groupCtx)
	}
	return nil
}

// start runs g's Watcher until ctx ends or the group is removed.
func (g *coreGroup) start(ctx context.Context) {
	ctx, g.cancel = context.WithCancel(ctx)
	g.w.Start(ctx)
}

// startGroups starts every group's Watcher (Start).
func (b *Balancer) startGroups() {
	b.groupsMu.Lock()
	defer b.groupsMu.Unlock()
	for _, g := range b.groups {
		g.start(b.groupCtx)
	}
}

// removeGroup stops a group's Watcher and takes its Cores out of the
// pool (their calls in progress go on, as RemoveCore's).
func (b *Balancer) removeGroup(name string) bool {
	b.groupsMu.Lock()
	g, ok := b.groups[name]
	delete(b.groups, name)
	b.groupsMu.Unlock()
	if !ok {
		return false
	}
	if g.cancel != nil {
		g.cancel()
		<-g.w.Done() // no change of its may come after this
	}
	b.applyTargets(g, nil)
	return true
}

// groupOf returns the group a pool Core belongs to ("" for none).
func (b *Balancer) groupOf(core string) string {
	c := b.pool.get(core)
	if c == nil {
		return ""
	}
	return c.group
}

// applyTargets makes g's Cores the targets': new ones are added (and
// probed), gone ones removed, changed ranks and weights updated.
// Watcher goroutine, one call at a time per group.
func (b *Balancer) applyTargets(g *coreGroup, ts []resolve.Target) {
	g.mu.Lock()
	defer g.mu.Unlock()
	prios := []uint16{}
	for _, t := range ts {
		if !slices.Contains(prios, t.Priority) {
			prios = append(prios, t.Priority)
		}
	}
	slices.Sort(prios)
	want := map[string]resolve.Target{}
	for _, t := range ts {
		want[memberName(g.cfg.Name, t)] = t
	}
	var kept []string
	for _, name := range g.members {
		if _, ok := want[name]; ok {
			kept = append(kept, name)
			continue
		}
		if _, err := b.pool.remove(name); err == nil {
			b.log.Info("core removed: no longer in DNS", "core", name, "group", g.cfg.Name)
			b.pool.emit(EventCoreRemoved, name, "dns: "+g.ep.host)
		}
	}
	for _, t := range ts {
		name := memberName(g.cfg.Name, t)
		rank := slices.Index(prios, t.Priority)
		weight := max(int(t.Weight), 1)
		if c := b.pool.get(name); c != nil {
			b.pool.setRank(c, rank, weight)
			continue
		}
		cfg := CoreConfig{Name: name, Address: g.ep.transport + ":" + t.Addr.String(), Weight: weight,
			MaxCalls: g.cfg.MaxCalls, TLSName: g.cfg.TLSName}
		if cfg.TLSName == "" {
			cfg.TLSName = g.ep.host // RFC 5922 4.1: the domain that was looked up
		}
		c, err := b.pool.add(cfg)
		if err != nil {
			b.log.Warn("core from DNS not added", "core", name, "group", g.cfg.Name, "err", err)
			continue
		}
		c.group = g.cfg.Name
		b.pool.setRank(c, rank, weight)
		kept = append(kept, name)
		b.log.Info("core added from DNS", "core", name, "group", g.cfg.Name, "host", t.Host, "priority", t.Priority, "weight", t.Weight)
		b.pool.emit(EventCoreAdded, name, "dns: "+g.ep.host)
		if b.started {
			b.sendProbe(c)
		}
	}
	g.members = kept
}

// CoreGroupStatus is one Core given by name, for ctl and the web page.
type CoreGroupStatus struct {
	Name      string    `json:"name"`
	Address   string    `json:"address"`
	Cores     []string  `json:"cores"`
	LastGood  time.Time `json:"last_good,omitzero"`
	Expires   time.Time `json:"expires,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	// Stale: the name no longer resolves and its last good answer is in
	// force; Dropped: that ran out too, the group has no Cores.
	Stale   bool `json:"stale"`
	Dropped bool `json:"dropped"`
}

// CoreGroups returns the Cores given by DNS name, sorted by name.
func (b *Balancer) CoreGroups() []CoreGroupStatus {
	b.groupsMu.Lock()
	gs := make([]*coreGroup, 0, len(b.groups))
	for _, g := range b.groups {
		gs = append(gs, g)
	}
	b.groupsMu.Unlock()
	out := make([]CoreGroupStatus, 0, len(gs))
	for _, g := range gs {
		st := g.w.State()
		g.mu.Lock()
		members := slices.Clone(g.members)
		g.mu.Unlock()
		out = append(out, CoreGroupStatus{Name: g.cfg.Name, Address: g.cfg.Address, Cores: members,
			LastGood: st.LastGood, Expires: st.Expires, LastError: st.LastError, Stale: st.Stale, Dropped: st.Dropped})
	}
	slices.SortFunc(out, func(a, b CoreGroupStatus) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

// groupConfigs returns the groups' configurations (for CoreConfigs), by
// name.
func (b *Balancer) groupConfigs() []CoreConfig {
	b.groupsMu.Lock()
	out := make([]CoreConfig, 0, len(b.groups))
	for _, g := range b.groups {
		out = append(out, g.cfg)
	}
	b.groupsMu.Unlock()
	slices.SortFunc(out, func(x, y CoreConfig) int { return strings.Compare(x.Name, y.Name) })
	return out
}
