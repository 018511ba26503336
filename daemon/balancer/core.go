package balancer

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// State is a Core's state as the selection sees it.
type State string

// Core states.
const (
	StateActive   State = "active"   // up, gets new calls
	StateTrying   State = "trying"   // up but failed lately: used only when no active Core is left
	StateInactive State = "inactive" // down by probing; comes back after up_after successes
	StateDisabled State = "disabled" // administratively off: no new calls
	StateDraining State = "draining" // no new calls, existing calls finish
)

// admin states set by the operator.
const (
	adminNone = iota
	adminDisabled
	adminDraining
)

// Core is one Core server of the pool.
type Core struct {
	name      string
	transport string
	addr      netip.AddrPort
	weight    int    // pool lock
	rank      int    // pool lock: new calls go to the lowest rank with a usable Core (dnscores.go)
	group     string // the Core given by DNS name this one is a target of ("" for none)
	tlsName   string // the name a tls: Core's certificate must carry
	maxCalls  atomic.Int64

	state atomic.Value // State, recomputed on every change

	mu        sync.Mutex // guards the fields below
	admin     int
	up        bool
	fails     int  // consecutive probe failures
	succs     int  // consecutive probe successes
	suspect   bool // a call attempt got no answer since the last good probe
	drained   bool // core-drained emitted for the current drain
	lastProbe time.Time
	lastCode  int

	calls     atomic.Int64 // confirmed dialogs (2xx..BYE)
	pending   atomic.Int64 // INVITEs in progress on this Core
	routed    atomic.Uint64
	answered  atomic.Uint64
	failovers atomic.Uint64 // attempts that moved away from this Core
	latency   atomic.Int64  // probe RTT EWMA, ns

	swrr int // smooth weighted round robin current weight (pool lock)
}

func newCore(c CoreConfig) (*Core, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	tp, ap, _ := parseCoreAddress(c.Address)
	w := c.Weight
	if w == 0 {
		w = 1
	}
	co := &Core{name: c.Name, transport: tp, addr: ap, weight: w, tlsName: c.TLSName, up: true}
	co.maxCalls.Store(int64(c.MaxCalls))
	co.state.Store(StateActive)
	return co, nil
}

// Name returns the Core's name.
func (c *Core) Name() string { return c.name }

// State returns the Core's current state.
func (c *Core) State() State { return c.state.Load().(State) }

func (c *Core) load() int64 { return c.calls.Load() + c.pending.Load() }

// full reports whether the Core reached max_calls (0 = unlimited).
func (c *Core) full() bool {
	m := c.maxCalls.Load()
	return m > 0 && c.load() >= m
}

// recompute derives the state; c.mu held. It returns the old and new state.
func (c *Core) recompute() (State, State) {
	old := c.State()
	var s State
	switch {
	case c.admin == adminDisabled:
		s = StateDisabled
	case c.admin == adminDraining:
		s = StateDraining
	case !c.up:
		s = StateInactive
	case c.fails > 0 || c.suspect:
		s = StateTrying
	default:
		s = StateActive
	}
	c.state.Store(s)
	return old, s
}

// decr lowers a counter but never below zero.
func decr(v *atomic.Int64) {
	for {
		n := v.Load()
		if n <= 0 {
			return
		}
		if v.CompareAndSwap(n, n-1) {
			return
		}
	}
}

// CoreStatus is a snapshot of one Core for ctl and the web page.
type CoreStatus struct {
	Name      string  `json:"name"`
	Address   string  `json:"address"`
	Weight    int     `json:"weight"`
	Group     string  `json:"group,omitempty"` // the Core given by DNS name it is a target of
	Rank      int     `json:"rank,omitempty"`  // its SRV priority's rank in the group (0: first choice)
	MaxCalls  int     `json:"max_calls"`
	State     State   `json:"state"`
	Calls     int64   `json:"calls"`
	Pending   int64   `json:"pending"`
	Routed    uint64  `json:"routed"`
	Answered  uint64  `json:"answered"`
	Failovers uint64  `json:"failovers"`
	LatencyMS float64 `json:"latency_ms"`
	LastProbe string  `json:"last_probe,omitempty"`
	LastCode  int     `json:"last_code,omitempty"`
}

func (c *Core) status() CoreStatus {
	c.mu.Lock()
	lp, lc := c.lastProbe, c.lastCode
	c.mu.Unlock()
	st := CoreStatus{
		Name: c.name, Address: c.addressString(), Weight: c.weight, Group: c.group, Rank: c.rank,
		MaxCalls: int(c.maxCalls.Load()), State: c.State(),
		Calls: c.calls.Load(), Pending: c.pending.Load(),
		Routed: c.routed.Load(), Answered: c.answered.Load(), Failovers: c.failovers.Load(),
		LatencyMS: float64(c.latency.Load()) / 1e6, LastCode: lc,
	}
	if !lp.IsZero() {
		st.LastProbe = lp.UTC().Format(time.RFC3339)
	}
	return st
}

func (c *Core) addressString() string {
	if c.transport != "udp" {
		return c.transport + ":" + c.addr.String()
	}
	return c.addr.String()
}

// Config returns the Core's configuration as it is now.
func (c *Core) Config() CoreConfig {
	return CoreConfig{Name: c.name, Address: c.addressString(), Weight: c.weight, MaxCalls: int(c.maxCalls.Load()), TLSName: c.tlsName}
}

func (c *Core) String() string { return fmt.Sprintf("%s(%s)", c.name, c.addr) }
