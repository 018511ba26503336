package balancer

import (
	"fmt"
	"github.com/sipedge/sipedge/daemon/balancer/request"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
)

// vnodesPerWeight is the number of points each unit of weight puts on
// the consistent-hash ring: enough that a dead Core's share spreads over
// all the others instead of landing on one neighbour.
const vnodesPerWeight = 160

// pool is the set of Cores and the selection over them.
type pool struct {
	algorithm string
	events    Events

	mu    sync.RWMutex
	cores []*Core
	// ranked: some Core has a rank above 0; pick then takes the lowest
	// rank with a usable Core (rank, pick's lock).
	ranked bool
	rank   int
	ring   []ringPoint // sorted by hash

	rr atomic.Uint64
}

type ringPoint struct {
	hash uint64
	core *Core
}

func newPool(algorithm string, events Events) *pool {
	return &pool{algorithm: algorithm, events: events}
}

func (p *pool) emit(kind, core, reason string) {
	if p.events != nil {
		p.events.Event(kind, core, reason)
	}
}

// hash64 is FNV-1a 64 of s, finalised (mix64).
func hash64(s string) uint64 { return request.Mix64(request.FNV1a(request.FNVOffset64, s)) }

// rebuild recomputes the hash ring; p.mu held for writing.
func (p *pool) rebuild() {
	p.ring = p.ring[:0]
	for _, c := range p.cores {
		for i := 0; i < vnodesPerWeight*c.weight; i++ {
			p.ring = append(p.ring, ringPoint{hash64(c.name + "#" + strconv.Itoa(i)), c})
		}
	}
	sort.Slice(p.ring, func(i, j int) bool { return p.ring[i].hash < p.ring[j].hash })
}

func (p *pool) add(cfg CoreConfig) (*Core, error) {
	c, err := newCore(cfg)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	for _, o := range p.cores {
		if o.name == c.name {
			p.mu.Unlock()
			return nil, fmt.Errorf("core %q exists", c.name)
		}
	}
	p.cores = append(p.cores, c)
	p.rebuild()
	p.mu.Unlock()
	return c, nil
}

func (p *pool) remove(name string) (*Core, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, c := range p.cores {
		if c.name == name {
			p.cores = slices.Delete(p.cores, i, i+1)
			p.rebuild()
			return c, nil
		}
	}
	return nil, fmt.Errorf("no core %q", name)
}

func (p *pool) get(name string) *Core {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, c := range p.cores {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (p *pool) list() []*Core {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return slices.Clone(p.cores)
}

// byAddr finds the Core at a transport address (for in-dialog requests
// and responses whose Core is not otherwise known).
func (p *pool) byAddr(a netip.AddrPort) *Core {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, c := range p.cores {
		if c.addr == a {
			return c
		}
	}
	return nil
}

// hasTransport reports whether a Core is reached over tp.
func (p *pool) hasTransport(tp string) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, c := range p.cores {
		if c.transport == tp {
			return true
		}
	}
	return false
}

// hasAddr reports whether a Core is at address a (any port).
func (p *pool) hasAddr(a netip.Addr) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, c := range p.cores {
		if c.addr.Addr().Unmap() == a {
			return true
		}
	}
	return false
}

// eligible reports whether c may take a new call at the given tier:
// tier 0 takes only active Cores, tier 1 also trying ones; and at the
// rank pick chose.
func (p *pool) eligible(c *Core, tier int, exclude []*Core) bool {
	if p.ranked && c.rank != p.rank {
		return false
	}
	return eligibleAnyRank(c, tier, exclude)
}

// eligibleAnyRank is eligible whatever c's rank.
func eligibleAnyRank(c *Core, tier int, exclude []*Core) bool {
	s := c.State()
	if s != StateActive && (tier == 0 || s != StateTrying) {
		return false
	}
	if c.full() {
		return false
	}
	return !slices.Contains(exclude, c)
}

// pick chooses a Core for a new call, or nil when every Core is full,
// down or excluded.
func (p *pool) pick(callID string, exclude []*Core) *Core {
	p.mu.Lock() // weighted round robin mutates per-core state
	defer p.mu.Unlock()
	for tier := 0; tier < 2; tier++ {
		if p.ranked && !p.chooseRank(tier, exclude) {
			continue
		}
		var c *Core
		switch p.algorithm {
		case Weighted:
			c = p.pickWeighted(tier, exclude)
		case LeastLoad:
			c = p.pickLeastLoad(tier, exclude)
		case CallHash:
			c = p.pickHash(callID, tier, exclude)
		default:
			c = p.pickRoundRobin(tier, exclude)
		}
		if c != nil {
			return c
		}
	}
	return nil
}

// chooseRank sets p.rank to the lowest rank with a Core eligible at
// tier; false when there is none (pick's lock).
func (p *pool) chooseRank(tier int, exclude []*Core) bool {
	found := false
	for _, c := range p.cores {
		if (!found || c.rank < p.rank) && eligibleAnyRank(c, tier, exclude) {
			p.rank, found = c.rank, true
		}
	}
	return found
}

// setRank sets a Core's rank and weight (dnscores.go).
func (p *pool) setRank(c *Core, rank, weight int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.rank == rank && c.weight == weight {
		return
	}
	c.rank, c.weight = rank, weight
	p.ranked = false
	for _, o := range p.cores {
		p.ranked = p.ranked || o.rank != 0
	}
	p.rebuild()
}

// usable appends to buf the Cores that may take a new call at tier, in
// pool order.
func (p *pool) usable(buf []*Core, tier int, exclude []*Core) []*Core {
	for _, c := range p.cores {
		if p.eligible(c, tier, exclude) {
			buf = append(buf, c)
		}
	}
	return buf
}

// pickRoundRobin turns over the usable Cores only, so that a Core that is
// down, disabled or full leaves its share to all the others evenly, not
// to the Core after it in the pool.
func (p *pool) pickRoundRobin(tier int, exclude []*Core) *Core {
	var buf [16]*Core
	u := p.usable(buf[:0], tier, exclude)
	if len(u) == 0 {
		return nil
	}
	return u[p.rr.Add(1)%uint64(len(u))]
}

// pickWeighted is nginx's smooth weighted round robin.
func (p *pool) pickWeighted(tier int, exclude []*Core) *Core {
	var best *Core
	total := 0
	for _, c := range p.cores {
		if !p.eligible(c, tier, exclude) {
			continue
		}
		c.swrr += c.weight
		total += c.weight
		if best == nil || c.swrr > best.swrr {
			best = c
		}
	}
	if best != nil {
		best.swrr -= total
	}
	return best
}

// pickLeastLoad takes the Core with the largest free slot (max_calls minus
// its calls; unlimited Cores count as having 1<<20 slots per weight), ties
// broken by fewest calls, then in turn over the usable Cores.
func (p *pool) pickLeastLoad(tier int, exclude []*Core) *Core {
	var buf [16]*Core
	u := p.usable(buf[:0], tier, exclude)
	n := len(u)
	if n == 0 {
		return nil
	}
	start := int(p.rr.Add(1) % uint64(n))
	var best *Core
	var bestFree, bestLoad int64
	for i := 0; i < n; i++ {
		c := u[(start+i)%n]
		load := c.load()
		m := c.maxCalls.Load()
		if m == 0 {
			m = int64(c.weight) << 20
		}
		free := m - load
		if best == nil || free > bestFree || (free == bestFree && load < bestLoad) {
			best, bestFree, bestLoad = c, free, load
		}
	}
	return best
}

// pickHash walks the consistent-hash ring from the Call-ID's point to the
// first eligible Core.
func (p *pool) pickHash(callID string, tier int, exclude []*Core) *Core {
	if len(p.ring) == 0 {
		return nil
	}
	h := hash64(callID)
	i := sort.Search(len(p.ring), func(i int) bool { return p.ring[i].hash >= h })
	for k := 0; k < len(p.ring); k++ {
		c := p.ring[(i+k)%len(p.ring)].core
		if p.eligible(c, tier, exclude) {
			return c
		}
	}
	return nil
}

// setAdmin changes a Core's administrative state.
func (p *pool) setAdmin(name string, admin int) error {
	c := p.get(name)
	if c == nil {
		return fmt.Errorf("no core %q", name)
	}
	c.mu.Lock()
	c.admin = admin
	old, now := c.recompute()
	c.mu.Unlock()
	if old != now {
		switch admin {
		case adminDisabled:
			p.emit(EventCoreDisabled, name, "operator")
		case adminDraining:
			p.emit(EventCoreDraining, name, "operator")
		default:
			p.emit(EventCoreEnabled, name, "operator")
		}
	}
	return nil
}
