package balancer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/sipedge/sipedge/daemon/balancer/request"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Balancer is the SIP balancer. Create it with New, run it with Start,
// stop it with Close.
type Balancer struct {
	opt    Options
	log    *slog.Logger
	pool   *pool
	wheel  *wheel
	parser *sip.Parser
	reqCfg *request.Config // what the request views need of us (rawreq.go)
	// respParser parses responses: they need fewer headers parsed than
	// requests (Record-Route, Route and Max-Forwards pass as raw text).
	respParser *sip.Parser

	listeners []*listener
	// groups are the Cores given by DNS name (dnscores.go); their
	// Watchers run under groupCtx until Close.
	groupsMu    sync.Mutex
	groups      map[string]*coreGroup
	groupCtx    context.Context
	groupCancel context.CancelFunc
	udpOut      *listener
	udpLoop     *listener // the first UDP listener on loopback: sends to loopback (a VIP check's OPTIONS)
	tcpOut      *listener
	tlsOut      *listener
	tlsLog      tlsLogLimit
	closeLog    [len(tcpClosedReasons)]everySecond // Warn lines of connections closed for bad input (warnClosed)
	twins       []*listener                        // the Core-facing twins of the UDP listeners (coresock.go)
	workers     []chan inbound
	urgent      []chan inbound // per worker, taken first: messages from the twins
	workerBeat  []atomic.Int64
	workerSync  []workerSync

	stx     *shardMap[string, *serverTx]
	ctx     *branchTable
	dialogs *dialogTable
	probes  probeTable
	// admitMu makes a new call's dialog cap check and its entry one
	// step: two workers cannot both take the table's last place.
	admitMu sync.Mutex

	connMu    sync.Mutex // guards the TCP connection table and counts
	conns     map[netip.AddrPort]*tcpConn
	perSource map[netip.Addr]int // inbound connections by source (sourceKey), exempt ones left out
	nTCPIn    int                // inbound connections open
	nTCPOut   int                // connections dialled, open
	tcpExempt atomic.Pointer[[]netip.Prefix]

	branchPrefix  string
	branchPrefixB []byte
	probePrefix   string
	probePrefixB  []byte
	seq           atomic.Uint64

	stats Stats
	epoch time.Time // monotonic base of inbound.at

	standby   atomic.Bool // hot standby: no probes, no expiry (standby.go)
	relayOpen atomic.Bool // Options.Relay is RelayOpen (relay.go)
	started   bool
	stop      chan struct{}
	wg        sync.WaitGroup
	workWG    sync.WaitGroup
	once      sync.Once
}

// New checks opt and builds a Balancer; nothing listens until Start.
func New(opt Options) (*Balancer, error) {
	opt = opt.withDefaults()
	if err := opt.validate(); err != nil {
		return nil, fmt.Errorf("balancer options: %w", err)
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	id := hex.EncodeToString(rnd[:])
	b := &Balancer{
		opt:          opt,
		log:          opt.Logger,
		pool:         newPool(opt.Algorithm, opt.Events),
		parser:       request.NewParser(),
		stx:          newShardMap[*serverTx](),
		conns:        map[netip.AddrPort]*tcpConn{},
		perSource:    map[netip.Addr]int{},
		branchPrefix: sip.RFC3261BranchMagicCookie + "sb" + id + ".",
		probePrefix:  sip.RFC3261BranchMagicCookie + "sp" + id + ".",
		stop:         make(chan struct{}),
		epoch:        time.Now(),
		groups:       map[string]*coreGroup{},
	}
	b.groupCtx, b.groupCancel = context.WithCancel(context.Background())
	b.parser.MaxMessageLength = 65535
	b.respParser = sip.NewParser(sip.WithHeadersParsers(leanResponseParsers()))
	b.respParser.MaxMessageLength = 65535
	b.probePrefixB = []byte(b.probePrefix)
	b.SetTCPExempt(opt.TCPExempt)
	b.branchPrefixB = []byte(b.branchPrefix)
	b.ctx = newBranchTable(b.branchPrefix)
	b.probes.m = map[string]*probe{}
	b.wheel = newWheel(10*time.Millisecond, 1024, b.log)
	b.dialogs = newDialogTable(opt.Dialogs, opt.DialogTimeout, opt.InviteTimeout+time.Minute, b.coreIdle)
	b.dialogs.maxSession = opt.MaxSessionExpires
	b.relayOpen.Store(opt.Relay == RelayOpen)
	for _, l := range opt.Listen {
		la, _ := parseListen(l)
		li := newListener(la)
		b.listeners = append(b.listeners, li)
		if li.transport == "udp" && li.addr.Addr().IsLoopback() && b.udpLoop == nil {
			b.udpLoop = li
		}
		if li.transport == "udp" && b.udpOut == nil {
			b.udpOut = li
		}
		if li.transport == "tcp" && b.tcpOut == nil {
			b.tcpOut = li
		}
		if li.transport == "tls" && b.tlsOut == nil {
			b.tlsOut = li
		}
	}
	switch opt.CorePort {
	case CorePortOff:
	case CorePortAny:
		b.newCoreTwins(0)
	case 0:
		b.newCoreTwins(DefaultCorePort(opt.Listen))
	default:
		b.newCoreTwins(opt.CorePort)
	}
	b.reqCfg = b.reqConfig()
	for _, c := range opt.Cores {
		if err := b.addCore(c); err != nil {
			return nil, fmt.Errorf("balancer options: %w", err)
		}
	}
	return b, nil
}

func (b *Balancer) checkCoreTransport(c CoreConfig) error {
	ep, err := parseCoreEndpoint(c.Address)
	if err != nil {
		return fmt.Errorf("core %q: %w", c.Name, err)
	}
	if tp := ep.transport; (tp == "udp" && b.udpOut == nil) || (tp == "tcp" && b.tcpOut == nil) || (tp == "tls" && b.tlsOut == nil) {
		return fmt.Errorf("core %q: no %s listen address to reach it from", c.Name, tp)
	}
	if ep.transport == "tls" && b.opt.TLS.Client == nil {
		return fmt.Errorf("core %q: a tls: Core and no TLS client configuration", c.Name)
	}
	if ep.transport == "tls" && ep.host == "" && c.TLSName == "" {
		return fmt.Errorf("core %q: a tls: Core at an IP address needs tls_name, the name its certificate carries", c.Name)
	}
	return nil
}

// addCore adds a Core of the configuration: one Core for an IP address,
// a group for a DNS name (dnscores.go).
func (b *Balancer) addCore(c CoreConfig) error {
	if err := b.checkCoreTransport(c); err != nil {
		return err
	}
	ep, _ := parseCoreEndpoint(c.Address)
	if ep.host != "" {
		if err := c.validate(); err != nil {
			return err
		}
		return b.addGroup(c, ep)
	}
	b.groupsMu.Lock()
	_, dup := b.groups[c.Name]
	b.groupsMu.Unlock()
	if dup {
		return fmt.Errorf("core %q exists", c.Name)
	}
	_, err := b.pool.add(c)
	return err
}

// Start opens the sockets and starts the readers, the workers, the timer
// wheel, the prober and the dialog sweeper.
func (b *Balancer) Start(ctx context.Context) error {
	if b.started {
		return errors.New("balancer already started")
	}
	for _, l := range append(b.listeners[:len(b.listeners):len(b.listeners)], b.twins...) {
		if err := b.open(ctx, l); err != nil {
			b.closeSockets()
			return err
		}
	}
	b.started = true
	b.workers = make([]chan inbound, b.opt.Workers)
	b.urgent = make([]chan inbound, b.opt.Workers)
	b.workerBeat = make([]atomic.Int64, b.opt.Workers)
	b.workerSync = make([]workerSync, b.opt.Workers)
	for i := range b.workers {
		ch, urgent := make(chan inbound, b.opt.QueueLength), make(chan inbound, b.opt.QueueLength)
		b.workers[i], b.urgent[i] = ch, urgent
		b.workerBeat[i].Store(time.Now().UnixNano())
		b.workWG.Add(1)
		go func() {
			defer b.workWG.Done()
			for {
				var in inbound
				select { // the Cores' side first: it completes calls already taken
				case in = <-urgent:
				default:
					select {
					case <-b.stop:
						return
					case in = <-urgent:
					case in = <-ch:
					}
				}
				if in.data == nil {
					b.workerBeat[i].Store(time.Now().UnixNano())
					continue
				}
				ws := &b.workerSync[i]
				if !in.lis.coreSide {
					// Admission reads how long the public side waits.
					ws.noteLag(time.Since(b.epoch), in.at, b.opt.ShedDelay)
				}
				ws.mu.Lock()
				b.handle(in)
				ws.mu.Unlock()
				ws.pending.Add(-1)
			}
		}()
	}
	go b.wheel.run()
	for _, l := range append(b.listeners[:len(b.listeners):len(b.listeners)], b.twins...) {
		b.wg.Add(1)
		if l.udp != nil {
			go b.readUDP(l)
		} else {
			go b.acceptTCP(l)
		}
	}
	b.wg.Add(2)
	go b.probeLoop()
	go b.sweepLoop()
	b.startGroups()
	b.log.Info("sip balancer started", "listen", b.opt.Listen, "core_side", b.CoreAddrs(), "algorithm", b.opt.Algorithm, "cores", len(b.pool.list()))
	return nil
}

func (b *Balancer) closeSockets() {
	for _, l := range append(b.listeners[:len(b.listeners):len(b.listeners)], b.twins...) {
		if l.udp != nil {
			l.udp.Close()
		}
		if l.tcp != nil {
			l.tcp.Close()
		}
	}
	b.connMu.Lock()
	for _, c := range b.conns {
		c.c.Close()
	}
	b.connMu.Unlock()
}

// Close stops the balancer and waits for its goroutines.
func (b *Balancer) Close() error {
	b.once.Do(func() {
		close(b.stop)
		b.groupCancel()
		b.closeSockets()
		if !b.started {
			return
		}
		b.wg.Wait()
		b.workWG.Wait()
		b.wheel.close()
	})
	return nil
}

// Addrs returns the bound listen addresses ("udp:IP:port", ...).
func (b *Balancer) Addrs() []string {
	var out []string
	for _, l := range b.listeners {
		out = append(out, l.transport+":"+l.addr.String())
	}
	return out
}

func (b *Balancer) sweepLoop() {
	defer b.wg.Done()
	tk := time.NewTicker(time.Second)
	defer tk.Stop()
	for {
		select {
		case <-b.stop:
			return
		case now := <-tk.C:
			if b.standby.Load() {
				continue // the peer expires; its ends are mirrored
			}
			if n := b.dialogs.expire(now); n > 0 {
				b.stats.DialogsExpired.Add(uint64(n))
				b.log.Info("dialogs expired", "count", n)
			}
		}
	}
}

// coreIdle emits core-drained once a draining Core has no calls left.
func (b *Balancer) coreIdle(c *Core) {
	if c.State() != StateDraining {
		return
	}
	c.mu.Lock()
	emit := !c.drained
	c.drained = true
	c.mu.Unlock()
	if emit {
		b.log.Info("core drained", "core", c.name)
		b.pool.emit(EventCoreDrained, c.name, "last call ended")
	}
}

// AddCore adds a Core at runtime (a group of them for a DNS name).
func (b *Balancer) AddCore(c CoreConfig) error {
	if err := b.addCore(c); err != nil {
		return err
	}
	b.pool.emit(EventCoreAdded, c.Name, c.Address)
	if co := b.pool.get(c.Name); co != nil && b.started {
		b.sendProbe(co)
	}
	return nil
}

// RemoveCore removes a Core (or a group given by DNS name, with its
// Cores); its calls in progress keep flowing (in-dialog requests are
// routed by Record-Route) but it gets no new calls. A Core of a group
// goes only with its group.
func (b *Balancer) RemoveCore(name string) error {
	if g := b.groupOf(name); g != "" {
		return fmt.Errorf("core %q comes from DNS name %q: remove %q", name, g, g)
	}
	if b.removeGroup(name) {
		b.pool.emit(EventCoreRemoved, name, "operator")
		return nil
	}
	if _, err := b.pool.remove(name); err != nil {
		return err
	}
	b.pool.emit(EventCoreRemoved, name, "operator")
	return nil
}

// DisableCore stops new calls to a Core (administratively down).
func (b *Balancer) DisableCore(name string) error { return b.pool.setAdmin(name, adminDisabled) }

// DrainCore stops new calls to a Core and lets its calls finish; the
// core-drained event follows when the last one ends.
func (b *Balancer) DrainCore(name string) error {
	if err := b.pool.setAdmin(name, adminDraining); err != nil {
		return err
	}
	c := b.pool.get(name)
	c.mu.Lock()
	c.drained = false
	c.mu.Unlock()
	b.coreIdle(c)
	return nil
}

// EnableCore returns a disabled or draining Core to service.
func (b *Balancer) EnableCore(name string) error { return b.pool.setAdmin(name, adminNone) }

// Cores returns a snapshot of the pool.
func (b *Balancer) Cores() []CoreStatus {
	var out []CoreStatus
	for _, c := range b.pool.list() {
		out = append(out, c.status())
	}
	return out
}

// CoreConfigs returns the pool's configuration as it is now (for
// persisting runtime changes).
func (b *Balancer) CoreConfigs() []CoreConfig {
	var out []CoreConfig
	for _, c := range b.pool.list() {
		if c.group == "" { // a group's Cores come from DNS, not the configuration
			out = append(out, c.Config())
		}
	}
	return append(out, b.groupConfigs()...)
}

// CoreAdminState returns "disabled", "draining" or "" for a Core.
func (b *Balancer) CoreAdminState(name string) (string, error) {
	c := b.pool.get(name)
	if c == nil {
		return "", fmt.Errorf("no core %q", name)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.admin {
	case adminDisabled:
		return string(StateDisabled), nil
	case adminDraining:
		return string(StateDraining), nil
	}
	return "", nil
}

// Stats returns the balancer's counters.
func (b *Balancer) Stats() *Stats { return &b.stats }

// Transactions returns the number of live server and client transactions.
func (b *Balancer) Transactions() (server, client int) { return b.stx.len(), b.ctx.len() }

// Dialogs returns the number of dialogs in the table (early and confirmed).
func (b *Balancer) Dialogs() int { return b.dialogs.m.len() }

// Healthy reports whether the balancer's machinery is turning: the timer
// wheel ticked and every worker drained a marker within the last few
// seconds. The daemon feeds the watchdog's liveness from it.
func (b *Balancer) Healthy() error {
	if !b.started {
		return errors.New("not started")
	}
	now := time.Now().UnixNano()
	if now-b.wheel.lastRun.Load() > int64(3*time.Second) {
		return errors.New("timer wheel stalled")
	}
	for i, ch := range b.workers {
		select {
		case ch <- inbound{}: // a marker: the worker stamps its beat
		default:
		}
		if now-b.workerBeat[i].Load() > int64(5*time.Second) {
			return fmt.Errorf("worker %d stalled", i)
		}
	}
	return nil
}
