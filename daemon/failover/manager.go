package failover

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sipedge/sipedge/hal"
)

// Network is what the Manager needs from the HAL.
type Network interface {
	hal.Addresses
	hal.Announcer
}

// Manager runs the heartbeat protocol and the per-group VIP state
// machines. All state is guarded by mu; the event loop (Run), the health
// checkers and the control commands take it in turn. A heartbeat takes it
// only once its source, its MAC and its form have been checked.
type Manager struct {
	opt   Options
	log   *slog.Logger
	net   Network
	links hal.Links
	met   *Metrics

	mu       sync.Mutex
	groups   []*group
	byName   map[string]*group
	sess     *sessions
	pair     pairBoard // pair summaries: ours to send, the peers' (pair.go)
	boot     uint64
	seq      uint64
	seqCeil  uint64             // persisted floor for the next boot's sequence
	lastChal time.Time          // last heartbeat sent at once to an unproven one
	send     func([]byte) error // set by Run, or by tests
	nextSend time.Time
	sendNow  int // immediate heartbeats owed (state changed)
	started  bool
	stopping bool
	// sources are the peers' IP addresses: datagrams from anywhere else
	// are dropped unread. Set before start (Run, or tests), then only
	// read.
	sources  map[netip.Addr]bool
	rejects  *rejects
	annWG    sync.WaitGroup // announcement bursts in flight
	wake     chan struct{}
	notifier *notifier
	relay    *relay
}

type group struct {
	opt    GroupOptions
	state  State
	since  time.Time
	reason string
	start  time.Time // for initdead

	held     bool      // operator released: prefer any other box
	pinned   bool      // operator took over: preferred over any other box
	pinSince time.Time // when the operator set held or pinned

	releasedAtStop bool      // held the VIP when the daemon began to stop
	splitAt        time.Time // last split brain we kept the VIP through
	released       int       // heartbeats still to carry GroupReleased

	peers  map[string]*peerGroup
	checks []*checkState
	// leader is the primary group a reader VIP follows (nil: none);
	// followers are the groups that follow this one.
	leader    *group
	followers []*group
	due       bool // backup, and failback will give this box the VIP
	place     placement

	retry       bool      // a takeover or release failed; try again
	garpAt      time.Time // next repeat burst; zero: none
	garps       atomic.Uint64
	annErr      atomic.Pointer[string] // last announcement error
	transitions uint64
	lastErr     string
}

type peerGroup struct {
	node        string
	boot        uint64
	heard       time.Time
	status      GroupStatus
	betterSince time.Time // since when preferred over us (for failback); zero: not
}

type checkState struct {
	opt        TrackOptions
	mysql      *mysqlProber // for a mysql check
	ok         bool
	fails, oks int
	lastErr    string
}

// New validates opt and returns a Manager. net is used for addresses and
// announcements, links for link checks (may be nil if no group tracks a
// link).
func New(opt Options, net Network, links hal.Links) (*Manager, error) {
	o, err := opt.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("failover: %w", err)
	}
	if net == nil {
		return nil, errors.New("failover: no network (hal) given")
	}
	var bootb [8]byte
	_, _ = rand.Read(bootb[:])
	m := &Manager{
		opt:      o,
		log:      o.Logger,
		net:      net,
		links:    links,
		met:      o.Metrics,
		byName:   map[string]*group{},
		boot:     binary.BigEndian.Uint64(bootb[:]),
		seq:      uint64(o.WallClock.Now().UnixNano()),
		rejects:  newRejects(),
		wake:     make(chan struct{}, 1),
		notifier: newNotifier(o.Logger),
	}
	m.sess = newSessions(m.boot, o.ReplayWindow)
	if r, ok := net.(hal.Relayer); ok {
		m.relay = newRelay(r, o.Logger, o.Persist, o.RelayFor)
	}
	for _, go_ := range o.Groups {
		g := &group{opt: go_, peers: map[string]*peerGroup{}}
		for _, t := range go_.Track {
			if t.Kind == CheckLink && links == nil {
				return nil, fmt.Errorf("failover: vip %q tracks link %s but no link HAL given", go_.Name, t.Target)
			}
			// A check counts as passing until it has failed Fall times,
			// so a box does not start in fault.
			c := &checkState{opt: t, ok: true}
			if t.Kind == CheckMySQL {
				c.mysql = newMySQLProber(t, o.Logger)
			}
			g.checks = append(g.checks, c)
		}
		m.groups = append(m.groups, g)
		m.byName[go_.Name] = g
	}
	m.linkFollowers()
	return m, nil
}

// start removes VIPs left on the interfaces by a crash, then puts every
// group in init. It must run before anything is sent.
func (m *Manager) start(now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	if err := m.loadPins(); err != nil {
		errs = append(errs, err)
	}
	if err := m.loadSeq(); err != nil {
		// Only a peer of the previous release needs it, and only after
		// our clock went backward: not a reason to stay down.
		m.log.Warn("heartbeat sequence floor not kept", "err", err)
	}
	if err := m.relay.recover(m.groups); err != nil {
		errs = append(errs, err)
	}
	for _, g := range m.groups {
		if err := m.removeStale(g); err != nil {
			errs = append(errs, err)
		}
		g.state, g.since, g.start, g.reason = StateInit, now, now, "started"
		m.met.setState(g.opt.Name, StateInit)
		m.met.setPriority(g.opt.Name, g.effectivePriority())
		m.record(g, 0, StateInit, "started", now)
	}
	m.started = true
	m.nextSend = now
	return errors.Join(errs...)
}

func (m *Manager) removeStale(g *group) error {
	have, err := m.net.Addresses(g.opt.Interface)
	if err != nil {
		return fmt.Errorf("vip %s: list addresses on %s: %w", g.opt.Name, g.opt.Interface, err)
	}
	for _, p := range have {
		if p.Addr() == g.opt.Address.Addr() {
			m.log.Warn("removing stale VIP left by a previous run", "group", g.opt.Name, "address", p, "interface", g.opt.Interface)
			if err := m.net.DelAddress(g.opt.Interface, p); err != nil {
				return fmt.Errorf("vip %s: remove stale %s from %s: %w", g.opt.Name, p, g.opt.Interface, err)
			}
		}
	}
	return nil
}

// effectivePriority is the configured priority minus the weights of the
// failing checks, at least 1; 0 in fault.
func (g *group) effectivePriority() int {
	if g.faulted() != "" {
		return 0
	}
	p := g.opt.Priority - g.penalty()
	if p < 1 {
		p = 1
	}
	return p
}

func (g *group) penalty() int { return g.followPenalty() + g.checkPenalty() }

// checkPenalty is what failing weighted checks take off the priority.
func (g *group) checkPenalty() int {
	n := 0
	for _, c := range g.checks {
		if !c.ok && c.opt.Weight > 0 {
			n += c.opt.Weight
		}
	}
	return n
}

// faulted returns the failing fault check, or "".
func (g *group) faulted() string {
	for _, c := range g.checks {
		if !c.ok && c.opt.Weight == 0 {
			return c.opt.String() + ": " + c.lastErr
		}
	}
	return ""
}

// evaluate runs the group's state machine at now.
func (m *Manager) evaluate(g *group, now time.Time) {
	if !m.started || m.stopping {
		return
	}
	alive := g.alive(now)
	m.notePeerHolder(g, alive, now)
	if f := g.faulted(); f != "" {
		m.setDue(g, false, now)
		if g.state != StateFault {
			m.become(g, StateFault, "health check failed: "+f, now)
		}
		return
	}
	if g.state == StateFault {
		m.become(g, StateBackup, "health checks pass again", now)
	}
	self := m.selfCandidate(g)
	best, bestPeer := self, (*peerGroup)(nil)
	for _, p := range alive {
		if c := peerCandidate(p); c.eligible() && preferred(c, best) {
			best, bestPeer = c, p
		}
	}
	var master *peerGroup
	for _, p := range alive {
		if p.status.State == StateMaster {
			master = p
			break
		}
	}
	m.setDue(g, g.state == StateBackup && g.opt.Failback && master != nil && preferred(self, peerCandidate(master)), now)

	switch g.state {
	case StateInit:
		if len(alive) == 0 && now.Sub(g.start) < g.opt.Initdead {
			return
		}
		reason := "initdead expired without hearing a peer"
		if len(alive) > 0 {
			reason = "heard peer " + alive[0].node
		}
		m.become(g, StateBackup, reason, now)
		fallthrough
	case StateBackup:
		if master != nil {
			return
		}
		if bestPeer != nil {
			return
		}
		// Decide only on what the peers said after our own last change:
		// two boxes leaving fault together would otherwise each see the
		// other's stale "fault" and both take the VIP. Our change was
		// sent at once, so their answer comes within a heartbeat.
		for _, p := range alive {
			if !p.heard.After(g.since) {
				return
			}
		}
		m.become(g, StateMaster, m.takeoverReason(g, alive, now), now)
	case StateMaster:
		if master != nil {
			// Split brain: both hold the VIP. The preferred box keeps it
			// and announces again; the other releases at once.
			if preferred(peerCandidate(master), self) {
				m.become(g, StateBackup, fmt.Sprintf("split brain: peer %s holds the VIP too and is preferred (priority %d)", master.node, master.status.Priority), now)
				return
			}
			if now.Sub(g.splitAt) < m.opt.Interval {
				return // a backlog of the peer's heartbeats: once is enough
			}
			g.splitAt = now
			m.log.Warn("split brain: peer holds the VIP too; keeping it (preferred)", "group", g.opt.Name, "peer", master.node)
			m.announce(g, now)
			// Tell the peer now, not at the next interval: it releases on
			// our heartbeat, so after a healed link one box holds the VIP
			// within the first heartbeat that crosses either way.
			m.sendNow = max(m.sendNow, 1)
			return
		}
		for _, p := range alive {
			if p.status.Flags&GroupTakeover != 0 && peerCandidate(p).eligible() {
				// The operator's latest command wins: a takeover asked on
				// the peer overrides our own.
				g.pinned = false
				if err := m.savePins(); err != nil {
					m.log.Error("cannot persist the end of our takeover pin", "group", g.opt.Name, "err", err)
				}
				m.become(g, StateBackup, "peer "+p.node+" asked to take over (operator)", now)
				return
			}
		}
		if bestPeer == nil {
			return
		}
		switch {
		case self.held:
			m.become(g, StateBackup, "released by operator to "+bestPeer.node, now)
		case g.checkPenalty() > 0:
			m.become(g, StateBackup, fmt.Sprintf("health checks lowered priority to %d, peer %s has %d", self.priority, bestPeer.node, best.priority), now)
		case g.followPenalty() > 0 && !g.pinned && bestPeer.status.State == StateBackup &&
			!bestPeer.betterSince.IsZero() && now.Sub(bestPeer.betterSince) >= g.opt.StableFor:
			// Stable for stable_for, as a failback: the two boxes' checks
			// rise at different moments, and the reader must not bounce.
			m.become(g, StateBackup, fmt.Sprintf("follows %s on the peer: this box holds %s, peer %s takes this VIP", g.leader.opt.Name, g.leader.opt.Name, bestPeer.node), now)
		case g.opt.Failback && !g.pinned && bestPeer.status.State == StateBackup &&
			!bestPeer.betterSince.IsZero() && now.Sub(bestPeer.betterSince) >= g.opt.StableFor:
			m.become(g, StateBackup, fmt.Sprintf("failback to preferred peer %s, stable for %v", bestPeer.node, now.Sub(bestPeer.betterSince).Round(time.Millisecond)), now)
		}
	}
}

func (m *Manager) takeoverReason(g *group, alive []*peerGroup, now time.Time) string {
	if g.pinned {
		return "takeover by operator"
	}
	for _, p := range alive {
		if p.status.Flags&GroupReleased != 0 {
			return "peer " + p.node + " released the VIP"
		}
	}
	if len(alive) > 0 {
		return "preferred holder, peer " + alive[0].node + " is " + alive[0].status.State.String()
	}
	for _, p := range g.peers {
		if p.status.State == StateStopped && now.Sub(p.heard) < g.opt.Deadtime {
			return "peer " + p.node + " stopped"
		}
		return fmt.Sprintf("peer %s not heard for %v", p.node, now.Sub(p.heard).Round(time.Millisecond))
	}
	return "no peer heard"
}

// become moves g to state to. Taking the VIP adds the address and then
// announces it; leaving master opens the relay window (relay.go) and
// removes the address before anything is told to the peer, so the two
// boxes never hold it together and packets still sent here reach the
// new holder.
func (m *Manager) become(g *group, to State, reason string, now time.Time) {
	from := g.state
	if from == to {
		return
	}
	if to == StateMaster {
		// Add, then announce: a client that heard the announcement before
		// the address was up would send to a box that drops it. The gap
		// on the old holder's side is covered by its relay.
		if err := m.net.AddAddress(g.opt.Interface, g.opt.Address); err != nil {
			g.lastErr, g.retry = err.Error(), true
			m.log.Error("cannot take VIP", "group", g.opt.Name, "address", g.opt.Address, "interface", g.opt.Interface, "err", err)
			return // stay where we are; retried at the next step
		}
	}
	if from == StateMaster {
		m.relay.openFor(g, now)
		if err := m.net.DelAddress(g.opt.Interface, g.opt.Address); err != nil {
			// We must not tell the peer to take it while we still hold it.
			g.lastErr, g.retry = err.Error(), true
			m.log.Error("cannot release VIP", "group", g.opt.Name, "address", g.opt.Address, "interface", g.opt.Interface, "err", err)
			return
		}
		g.released = 2
		g.garpAt = time.Time{}
	}
	g.retry = false
	g.state, g.since, g.reason = to, now, reason
	// The handover window (no box holds the VIP) runs from the holder's
	// DelAddress to the client seeing the new holder's announcement:
	// tell the peer and announce before anything else (logs, events).
	if from == StateMaster {
		m.sendHeartbeat(now, 0)
		m.sendNow = max(m.sendNow, 1) // a second copy at the next flush
	}
	if to == StateMaster {
		m.countAnnounce(g, m.net.Announce(g.opt.Interface, g.opt.Address.Addr()))
		m.announceAsync(g, g.opt.GARPCount-1)
		g.garpAt = time.Time{}
		if g.opt.GARPRepeatAfter > 0 {
			g.garpAt = now.Add(g.opt.GARPRepeatAfter)
		}
		m.sendNow = max(m.sendNow, 2)
	} else if m.sendNow == 0 {
		m.sendNow = 1
	}
	g.transitions++
	defer m.leaderChanged(g, now)
	m.met.setState(g.opt.Name, to)
	m.met.transition(g.opt.Name, from, to)
	m.met.setPriority(g.opt.Name, g.effectivePriority())
	lvl := slog.LevelInfo
	if to == StateFault || to == StateMaster || from == StateMaster {
		lvl = slog.LevelWarn
	}
	m.log.Log(context.Background(), lvl, "VIP state change", "group", g.opt.Name, "from", from, "to", to, "reason", reason)
	m.record(g, from, to, reason, now)
	if g.opt.Notify != "" {
		m.notifier.run(g.opt.Notify, g.opt.NotifyTimeout, g.opt.Name, to.String(), from.String(), reason)
	}
}

func (m *Manager) record(g *group, from, to State, reason string, now time.Time) {
	if m.opt.Events != nil {
		m.opt.Events.Record(Event{Time: now, Group: g.opt.Name, From: from, To: to, Reason: reason})
	}
}

// announce sends one burst of gratuitous ARPs (or unsolicited neighbour
// advertisements) for g's VIP, in the background: an announcement can
// take milliseconds and the event loop must not wait for it.
func (m *Manager) announce(g *group, now time.Time) { m.announceAsync(g, g.opt.GARPCount) }

func (m *Manager) announceAsync(g *group, n int) {
	if n <= 0 {
		return
	}
	m.annWG.Add(1)
	go func() {
		defer m.annWG.Done()
		for i := 0; i < n; i++ {
			if !m.countAnnounce(g, m.net.Announce(g.opt.Interface, g.opt.Address.Addr())) {
				return
			}
		}
	}()
}

// countAnnounce records the result of one announcement.
func (m *Manager) countAnnounce(g *group, err error) bool {
	if err != nil {
		s := err.Error()
		g.annErr.Store(&s)
		m.log.Error("gratuitous ARP failed", "group", g.opt.Name, "address", g.opt.Address.Addr(), "interface", g.opt.Interface, "err", err)
		return false
	}
	g.garps.Add(1)
	m.met.garp(g.opt.Name)
	return true
}

// step does everything due at now (timers, retries, heartbeats) and
// returns when it wants to run next.
func (m *Manager) step(now time.Time) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stepLocked(now)
}

func (m *Manager) stepLocked(now time.Time) time.Time {
	m.relay.expire(now)
	for _, g := range m.groups {
		for _, p := range g.peers {
			if !p.betterSince.IsZero() && now.Sub(p.heard) >= g.opt.Deadtime {
				p.betterSince = time.Time{} // a peer that went silent starts over
			}
		}
		m.evaluate(g, now)
		if g.state == StateMaster && !g.garpAt.IsZero() && !now.Before(g.garpAt) {
			g.garpAt = time.Time{}
			m.announce(g, now)
		}
	}
	m.flush(now)
	return m.nextWake(now)
}

func (m *Manager) nextWake(now time.Time) time.Time {
	next := m.nextSend
	min := func(t time.Time) {
		if t.After(now) && t.Before(next) {
			next = t
		}
	}
	for _, g := range m.groups {
		for _, p := range g.peers {
			min(p.heard.Add(g.opt.Deadtime))
			if !p.betterSince.IsZero() {
				min(p.betterSince.Add(g.opt.StableFor))
			}
		}
		if g.state == StateInit {
			min(g.start.Add(g.opt.Initdead))
		}
		if !g.garpAt.IsZero() {
			min(g.garpAt)
		}
		if g.retry {
			min(now.Add(m.opt.Interval / 4)) // retry a failed takeover or release
		}
	}
	if t := m.relay.next(); !t.IsZero() {
		min(t)
	}
	return next
}

// shutdown releases every VIP this box holds and tells the peers, so they
// take over at once.
func (m *Manager) shutdown(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.started || m.stopping {
		return
	}
	m.stopping = true
	held := false
	for _, g := range m.groups {
		if g.state == StateMaster {
			held = true
			g.releasedAtStop = true
			m.relay.openFor(g, now)
			if err := m.net.DelAddress(g.opt.Interface, g.opt.Address); err != nil {
				m.log.Error("release VIP at stop", "group", g.opt.Name, "err", err)
			}
		}
	}
	if held {
		m.sendHeartbeat(now, MsgStopping) // the peer takes over at once
	}
	for _, g := range m.groups {
		from := g.state
		g.state, g.since, g.reason = StateStopped, now, "daemon stopping"
		m.met.setState(g.opt.Name, StateStopped)
		m.met.transition(g.opt.Name, from, StateStopped)
		m.record(g, from, StateStopped, "daemon stopping", now)
		m.log.Info("VIP state change", "group", g.opt.Name, "from", from, "to", StateStopped, "reason", "daemon stopping")
		if g.opt.Notify != "" {
			m.notifier.run(g.opt.Notify, g.opt.NotifyTimeout, g.opt.Name, StateStopped.String(), from.String(), "daemon stopping")
		}
	}
	for i := 0; i < 2; i++ {
		m.sendHeartbeat(now, MsgStopping)
	}
}
