package balancer

import (
	"github.com/sipedge/sipedge/daemon/balancer/request"
	"time"
)

// Hot standby: the box that holds the SIP VIP exports its dialog table
// and Core pool; the other box imports them and stays in standby (no
// probes, no dialog expiry, no events) so that after a takeover it
// routes the calls already up and counts them on the right Cores.
//
// In-dialog requests carry their route set (the balancer Record-Routes
// the VIP it listens on, the same on both boxes), so what the peer needs
// per dialog is small: its Core (for requests addressed to the VIP with
// no Route, and for the per-Core counts), whether it is up, when it
// expires, and what the routing policy checks an untrusted caller's
// in-dialog requests against (both tags, the next hop). A record from a
// peer on the previous release has no tags: it matches on its Call-ID
// alone, toward its Core (relay.go).

// DialogRecord is one dialog as exported to, and imported from, the peer.
type DialogRecord struct {
	CallID    string        `json:"call_id"`
	Core      string        `json:"core"`
	Confirmed bool          `json:"confirmed"`
	Created   time.Time     `json:"created"`
	Expires   time.Time     `json:"expires"`
	Session   time.Duration `json:"session,omitempty"` // negotiated Session-Expires
	CallerTag string        `json:"caller_tag,omitempty"`
	CalleeTag string        `json:"callee_tag,omitempty"`
	NextHop   string        `json:"next_hop,omitempty"` // see DialogEvent
}

// CoreRecord is one Core's configuration, administrative state and
// health as exported to the peer.
type CoreRecord struct {
	CoreConfig
	Admin string `json:"admin,omitempty"` // "", "disabled" or "draining"
	State State  `json:"state"`           // active, trying or inactive as probed (admin aside)
}

// ExportDialogs returns the dialog table, one shard at a time.
func (b *Balancer) ExportDialogs() []DialogRecord {
	out := make([]DialogRecord, 0, b.dialogs.m.len())
	b.dialogs.m.each(func(k string, d *dialog) bool {
		out = append(out, DialogRecord{CallID: k, Core: d.core.name, Confirmed: d.confirmed,
			Created: d.created, Expires: d.expires, Session: d.session,
			CallerTag: d.callerTag, CalleeTag: d.calleeTag, NextHop: d.hop.nextHop})
		return true
	})
	return out
}

// ApplyDialog mirrors one dialog change made on the peer. It is
// idempotent (a snapshot followed by events it already contains gives
// the same table), emits nothing and returns false when the event names
// a Core this box does not know.
func (b *Balancer) ApplyDialog(e DialogEvent) bool {
	t := b.dialogs
	switch e.Kind {
	case DialogCreate, DialogConfirm:
		c := b.pool.get(e.Core)
		if c == nil {
			return false
		}
		r := DialogRecord{CallID: e.CallID, Core: e.Core, Confirmed: e.Kind == DialogConfirm, Created: e.At, Expires: e.Expires,
			CallerTag: e.CallerTag, CalleeTag: e.CalleeTag, NextHop: e.NextHop}
		if r.Confirmed {
			if life := e.Expires.Sub(e.At); life > 0 && life != t.timeout {
				r.Session = life - 32*time.Second
			}
		} else {
			r.Expires = e.At.Add(t.early)
		}
		b.importDialog(r, c)
	case DialogEnd:
		t.m.update(e.CallID, func(d *dialog, ok bool) (*dialog, bool) {
			if ok {
				d.uncount()
			}
			return d, false
		})
	}
	return true
}

// importDialog sets one dialog from the peer's view: a create never
// undoes a confirm, a confirm of an unknown dialog creates it up. The
// peer's figures are bounded as ours are: Session-Expires clamped, the
// tags and next hop cut to maxNextHop.
func (b *Balancer) importDialog(r DialogRecord, c *Core) {
	r.Session = b.dialogs.clampSession(r.Session)
	hop := importedTarget(r)
	b.dialogs.m.update(r.CallID, func(d *dialog, ok bool) (*dialog, bool) {
		if !ok {
			d = &dialog{core: c, created: r.Created, expires: r.Expires, session: r.Session, confirmed: r.Confirmed,
				callerTag: r.CallerTag, calleeTag: r.CalleeTag, hop: hop}
			d.count()
			return d, true
		}
		if d.confirmed && !r.Confirmed {
			return d, true
		}
		d.uncount()
		d.core, d.confirmed, d.expires = c, r.Confirmed, r.Expires
		if r.Session > 0 {
			d.session = r.Session
		}
		if r.CallerTag != "" || r.CalleeTag != "" {
			d.callerTag, d.calleeTag = r.CallerTag, r.CalleeTag
		}
		if r.NextHop != "" {
			d.hop = hop
		}
		d.count()
		return d, true
	})
}

// importedTarget is the next hop of a mirrored record: an IP address
// read from its URI, else (a host name, none, too long) the dialog's
// Core. Its origin (Record-Route or Contact) is not mirrored: it counts
// as a Contact, which a target refresh replaces.
func importedTarget(r DialogRecord) dialogTarget {
	t := dialogTarget{calleeTag: r.CalleeTag}
	if r.NextHop == "" || len(r.NextHop) > maxNextHop {
		return t
	}
	t.nextHop = r.NextHop
	if tp, ap, ok := request.RouteTarget([]byte(r.NextHop)); ok && (tp == "udp" || tp == "tcp" || tp == "tls") {
		t.tp, t.addr = tp, ap
	}
	return t
}

func (d *dialog) count() {
	if d.confirmed {
		d.core.calls.Add(1)
	} else {
		d.core.pending.Add(1)
	}
}

func (d *dialog) uncount() {
	if d.confirmed {
		decr(&d.core.calls)
	} else {
		decr(&d.core.pending)
	}
}

// ReplaceDialogs replaces the whole dialog table with the peer's
// snapshot. It returns how many records named an unknown Core (skipped).
func (b *Balancer) ReplaceDialogs(rs []DialogRecord) (unknown int) {
	b.dialogs.m.each(func(_ string, d *dialog) bool {
		d.uncount()
		return false
	})
	for _, r := range rs {
		c := b.pool.get(r.Core)
		if c == nil {
			unknown++
			continue
		}
		b.importDialog(r, c)
	}
	return unknown
}

// ExportCores returns every Core with its administrative state and health.
func (b *Balancer) ExportCores() []CoreRecord {
	var out []CoreRecord
	for _, c := range b.pool.list() {
		if c.group != "" {
			continue // each box resolves the group's name itself
		}
		c.mu.Lock()
		r := CoreRecord{CoreConfig: c.Config(), State: StateActive}
		switch c.admin {
		case adminDisabled:
			r.Admin = string(StateDisabled)
		case adminDraining:
			r.Admin = string(StateDraining)
		}
		switch {
		case !c.up:
			r.State = StateInactive
		case c.fails > 0 || c.suspect:
			r.State = StateTrying
		}
		c.mu.Unlock()
		out = append(out, r)
	}
	for _, g := range b.groupConfigs() {
		out = append(out, CoreRecord{CoreConfig: g, State: StateActive})
	}
	return out
}

// ApplyCores makes the pool the peer's: Cores it lacks are added, Cores
// it no longer has are removed (their mirrored calls go with them, as
// RemoveCore does), and every Core takes the peer's max_calls,
// administrative state and health. Nothing is emitted and nothing is
// probed. It returns how many Cores changed.
func (b *Balancer) ApplyCores(rs []CoreRecord) (changed int, err error) {
	want := map[string]bool{}
	for _, r := range rs {
		want[r.Name] = true
		if ep, err := parseCoreEndpoint(r.Address); err == nil && ep.host != "" {
			// A Core given by DNS name: this box resolves it itself.
			b.groupsMu.Lock()
			g := b.groups[r.Name]
			b.groupsMu.Unlock()
			if g != nil && g.cfg.Address != r.Address {
				b.removeGroup(r.Name)
				g = nil
			}
			if g == nil {
				if err := b.addCore(r.CoreConfig); err != nil {
					return changed, err
				}
				changed++
			}
			continue
		}
		c := b.pool.get(r.Name)
		if c != nil && (c.Config().Address != r.Address || c.weight != max(r.Weight, 1)) {
			b.pool.remove(r.Name)
			c = nil
		}
		if c == nil {
			if err := b.checkCoreTransport(r.CoreConfig); err != nil {
				return changed, err
			}
			if c, err = b.pool.add(r.CoreConfig); err != nil {
				return changed, err
			}
			changed++
		}
		admin := adminNone
		switch r.Admin {
		case string(StateDisabled):
			admin = adminDisabled
		case string(StateDraining):
			admin = adminDraining
		}
		c.maxCalls.Store(int64(r.MaxCalls))
		c.mu.Lock()
		old := c.State()
		c.admin = admin
		c.up = r.State != StateInactive
		c.suspect = r.State == StateTrying
		c.fails, c.succs = 0, 0
		if admin == adminDraining {
			c.drained = true // the peer reports core-drained, not us
		}
		_, now := c.recompute()
		c.mu.Unlock()
		if old != now {
			changed++
		}
	}
	for _, c := range b.pool.list() {
		if !want[c.name] && c.group == "" {
			b.pool.remove(c.name)
			changed++
		}
	}
	for _, g := range b.groupConfigs() {
		if !want[g.Name] {
			b.removeGroup(g.Name)
			changed++
		}
	}
	return changed, nil
}

// SetStandby switches the balancer between active (probes the Cores,
// expires dialogs, reports Core events) and standby (mirrors the peer's
// table and pool and does none of that). It still routes whatever
// reaches it in both modes. Leaving standby probes every Core at once
// and gives every mirrored confirmed dialog a fresh lifetime: in-dialog
// refreshes on the peer are not streamed, so a mirrored expiry may be
// stale.
func (b *Balancer) SetStandby(on bool) {
	if b.standby.Swap(on) == on || on {
		return
	}
	now := time.Now()
	t := b.dialogs
	t.m.each(func(_ string, d *dialog) bool {
		if d.confirmed {
			if e := now.Add(t.lifetime(d)); e.After(d.expires) {
				d.expires = e
			}
		}
		return true
	})
	if b.started {
		go b.probeAll()
	}
}

// Standby reports whether the balancer is in standby.
func (b *Balancer) Standby() bool { return b.standby.Load() }

// ObserveDialogs sets the dialog table's observer, replacing
// Options.Dialogs (the daemon builds the replication channel after the
// balancer). Call it before Start.
func (b *Balancer) ObserveDialogs(o DialogObserver) { b.dialogs.obs = o }
