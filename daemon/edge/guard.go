package edge

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Action is what to do with a message.
type Action uint8

// Actions of a Verdict.
const (
	Accept Action = iota
	Drop          // discard silently
	Reject        // answer a request with Code and Reason
)

// Verdict is the Guard's decision on one message.
type Verdict struct {
	Action Action
	Code   int
	Reason string
	// Trusted: accepted as the box itself, a trusted network or a Core
	// (the balancer's routing policy does not apply to it).
	Trusted bool
}

var (
	accept    = Verdict{}
	trusted   = Verdict{Trusted: true}
	drop      = Verdict{Action: Drop}
	forbidden = Verdict{Action: Reject, Code: 403, Reason: "Forbidden"}
)

// Guard is the edge's screen. Screen is safe for concurrent use.
type Guard struct {
	opt    Options
	log    *slog.Logger
	pol    atomic.Pointer[policy]
	exempt atomic.Pointer[map[[16]byte]struct{}]
	tab    table
	now    func() time.Time

	dirty   atomic.Bool // bans changed since the last save
	saveMu  sync.Mutex
	saveErr atomic.Pointer[string]

	c counters
}

// counters are plain atomics; metrics.go exports them.
type counters struct {
	bans        atomic.Uint64 // flood bans imposed
	dropBanned  atomic.Uint64
	dropScanner atomic.Uint64
	refused     atomic.Uint64 // untrusted refused (403)
	evicted     atomic.Uint64 // tracked sources evicted from a full table
	banEvicted  atomic.Uint64
	saveFailed  atomic.Uint64
}

// New builds a Guard and loads the stored bans (expired ones are
// forgotten). A store that cannot be read is logged, not fatal: the box
// must keep answering calls.
func New(o Options) (*Guard, error) {
	o = o.withDefaults()
	if o.Untrusted != Allow && o.Untrusted != Refuse {
		return nil, fmt.Errorf("edge: untrusted %q: want %s or %s", o.Untrusted, Allow, Refuse)
	}
	for _, r := range o.Trusted {
		if !r.Prefix.IsValid() || (r.Transport != "" && r.Transport != "udp" && r.Transport != "tcp") {
			return nil, fmt.Errorf("edge: bad trusted rule %v", r)
		}
	}
	g := &Guard{opt: o, log: o.Logger, now: o.Now}
	g.tab.init()
	g.pol.Store(newPolicy(o))
	if o.Store != nil {
		bans, err := o.Store.LoadBans()
		if err != nil {
			g.log.Warn("edge: stored bans not loaded", "err", err)
		}
		now := g.now()
		n := 0
		for _, b := range bans {
			if b.Until.After(now) && g.tab.restore(b, g.pol.Load().perShard) {
				n++
			}
		}
		if n > 0 {
			g.log.Info("edge: bans restored from the store", "bans", n)
		}
	}
	return g, nil
}

// Update applies a reloaded configuration (Store, OnBan, Logger and Now
// are kept from New). Bans in force stay.
func (g *Guard) Update(o Options) error {
	o.Store, o.OnBan, o.Logger, o.Now = g.opt.Store, g.opt.OnBan, g.opt.Logger, g.opt.Now
	o = o.withDefaults()
	if o.Untrusted != Allow && o.Untrusted != Refuse {
		return fmt.Errorf("edge: untrusted %q: want %s or %s", o.Untrusted, Allow, Refuse)
	}
	g.pol.Store(newPolicy(o))
	return nil
}

// SetExempt replaces the addresses exempt as if trusted (the Cores: a
// Core sends every in-dialog request of the calls it ends).
func (g *Guard) SetExempt(addrs []netip.Addr) {
	m := make(map[[16]byte]struct{}, len(addrs))
	for _, a := range addrs {
		m[a.Unmap().As16()] = struct{}{}
	}
	g.exempt.Store(&m)
}

// The box itself, on loopback.
var (
	localhost4 = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	localhost6 = netip.IPv6Loopback()
)

// Screen decides on one message from src over transport ("udp", "tcp"):
// trusted and exempt sources pass; a banned source is dropped; an
// untrusted request is counted toward its source's rate (over the
// threshold: banned and dropped), dropped when its User-Agent is a
// scanner's, and refused with 403 when the policy says so. Responses
// are only subject to bans (they can only match our own transactions),
// and so is empty data: a TCP connection opening, not counted.
func (g *Guard) Screen(src netip.AddrPort, transport string, data []byte) Verdict {
	p := g.pol.Load()
	a := src.Addr().Unmap()
	// 127.0.0.1 and ::1 are this box itself (the kernel drops loopback
	// from the wire): its own checks, such as a VIP group's sip_options
	// probe every heartbeat, never a flood to ban. (The rest of 127/8
	// follows the policy: the lab plays other hosts on it.)
	if a == localhost4 || a == localhost6 || p.isTrusted(a, transport) {
		return trusted
	}
	if ex := g.exempt.Load(); ex != nil {
		if _, ok := (*ex)[a.As16()]; ok {
			return trusted
		}
	}
	k := keyOf(a)
	now := g.now().UnixNano()
	request := len(data) > 0 && !bytes.HasPrefix(data, []byte("SIP/"))
	banned, newBan := g.tab.hit(k, now, request && p.requests > 0, p)
	if newBan {
		g.banned(k, now, p)
	}
	if banned {
		g.c.dropBanned.Add(1)
		return drop
	}
	if !request {
		return accept
	}
	if p.anyScan && isScanner(data, p.scanners) {
		g.c.dropScanner.Add(1)
		return drop
	}
	if p.refuse {
		g.c.refused.Add(1)
		return forbidden
	}
	return accept
}

func (g *Guard) banned(k [16]byte, now int64, p *policy) {
	g.c.bans.Add(1)
	g.dirty.Store(true)
	b := Ban{Source: keyString(k), Reason: ReasonFlood, Since: time.Unix(0, now).UTC(), Until: time.Unix(0, now+p.ban).UTC()}
	g.log.Warn("edge: source banned for flooding", "source", b.Source, "until", b.Until,
		"threshold", fmt.Sprintf("%d requests per %s", p.requests, time.Duration(p.per)))
	if g.opt.OnBan != nil {
		g.opt.OnBan(b)
	}
}

// Bans lists the bans in force, newest first.
func (g *Guard) Bans() []Ban { return g.tab.bans(g.now().UnixNano()) }

// Clear lifts the ban on source (an address, or "" for every ban) and
// forgets its rate, then saves the table; it returns how many bans were
// lifted.
func (g *Guard) Clear(source string) (int, error) {
	var n int
	if source == "" {
		n = g.tab.clearAll()
	} else {
		a, err := parseSource(source)
		if err != nil {
			return 0, err
		}
		n = g.tab.clear(keyOf(a))
	}
	g.dirty.Store(true)
	return n, g.save()
}

// Run expires bans, forgets idle sources and saves the ban table when it
// changed (at most every second), until ctx ends; then it saves once more.
func (g *Guard) Run(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			g.save()
			return nil
		case <-t.C:
		}
		p := g.pol.Load()
		if g.tab.sweep(g.now().UnixNano(), p) > 0 {
			g.dirty.Store(true)
		}
		g.save()
	}
}

// save writes the bans to the store if they changed.
func (g *Guard) save() error {
	if g.opt.Store == nil || !g.dirty.Swap(false) {
		return nil
	}
	g.saveMu.Lock()
	defer g.saveMu.Unlock()
	bans := g.Bans()
	if len(bans) > MaxStoredBans {
		bans = bans[:MaxStoredBans]
	}
	if err := g.opt.Store.SaveBans(bans); err != nil {
		g.dirty.Store(true) // retry at the next tick
		g.c.saveFailed.Add(1)
		msg := err.Error()
		if old := g.saveErr.Swap(&msg); old == nil || *old != msg {
			g.log.Error("edge: bans not saved (they hold until a restart)", "err", err)
		}
		return fmt.Errorf("edge: save bans: %w", err)
	}
	if g.saveErr.Swap(nil) != nil {
		g.log.Info("edge: bans saved again")
	}
	return nil
}

// SaveError is the last failure to save the bans ("" when the last save
// worked).
func (g *Guard) SaveError() string {
	if p := g.saveErr.Load(); p != nil {
		return *p
	}
	return ""
}

// Tracked is the number of sources whose rate is tracked now.
func (g *Guard) Tracked() int { return g.tab.tracked() }

// Policy describes the policy in force (for status).
func (g *Guard) Policy() map[string]any {
	p := g.pol.Load()
	tr := make([]string, len(p.trusted))
	for i, r := range p.trusted {
		tr[i] = r.Prefix.String()
		if r.Transport != "" {
			tr[i] = r.Transport + ":" + tr[i]
		}
	}
	sc := make([]string, len(p.scanners))
	for i, s := range p.scanners {
		sc[i] = string(s)
	}
	return map[string]any{
		"trusted": tr, "untrusted": p.untrusted,
		"flood":    map[string]any{"requests": p.requests, "per": time.Duration(p.per).String(), "ban": time.Duration(p.ban).String()},
		"scanners": sc,
	}
}
