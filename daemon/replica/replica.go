package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sipedge/sipedge/daemon/balancer"
)

// Balancer is what replication needs of the local balancer: export on
// the active box, import and standby mode on the other.
type Balancer interface {
	ExportDialogs() []balancer.DialogRecord
	ExportCores() []balancer.CoreRecord
	ApplyDialog(balancer.DialogEvent) bool
	ReplaceDialogs([]balancer.DialogRecord) int
	ApplyCores([]balancer.CoreRecord) (int, error)
	SetStandby(bool)
	Dialogs() int
}

// Options configures a Replica.
type Options struct {
	Node   string // this box's name (in the handshake and logs)
	Listen string // TCP address the standby accepts on ("ip:port")
	Peer   string // the peer's replication address ("ip:port")
	Key    []byte // the cluster key (at least 16 bytes)

	// BatchDelay is how long dialog events are gathered before a frame
	// is sent (a full frame goes at once). Default 5 ms.
	BatchDelay time.Duration
	// CoreInterval is how often the Core pool is compared with what the
	// peer has (and sent when it changed, or every KeepAlive). Default
	// 200 ms.
	CoreInterval time.Duration
	// KeepAlive: the active box sends at least one frame this often; a
	// standby that hears nothing for 3 x KeepAlive drops the session.
	// Default 1 s.
	KeepAlive time.Duration
	// MaxPending bounds the events held for the peer; past it the session
	// is dropped and the next one starts with a snapshot. Default 262144.
	MaxPending int
	// RetryInterval between connection attempts. Default 250 ms.
	RetryInterval time.Duration

	Logger *slog.Logger

	// For tests: the wall clock (stamps in frame headers), and speaking
	// the previous release's wire (no tagged records).
	now      func() time.Time
	previous bool
}

func (o Options) withDefaults() (Options, error) {
	if len(o.Key) < 16 {
		return o, errors.New("replica: cluster key must be at least 16 bytes")
	}
	if o.Node == "" || len(o.Node) > maxNameLen {
		return o, fmt.Errorf("replica: node name must be 1..%d bytes", maxNameLen)
	}
	if _, _, err := net.SplitHostPort(o.Listen); err != nil {
		return o, fmt.Errorf("replica: listen %q: %w", o.Listen, err)
	}
	if _, err := netip.ParseAddrPort(o.Peer); err != nil {
		return o, fmt.Errorf("replica: peer %q: want a literal IP address and port: %w", o.Peer, err)
	}
	if o.BatchDelay <= 0 {
		o.BatchDelay = 5 * time.Millisecond
	}
	if o.CoreInterval <= 0 {
		o.CoreInterval = 200 * time.Millisecond
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = time.Second
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 1 << 18
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = 250 * time.Millisecond
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// Replica runs both ends of the channel: it accepts the peer's stream
// while this box is standby and streams to the peer while it is active.
type Replica struct {
	opt    Options
	log    *slog.Logger
	bal    Balancer
	peerIP netip.Addr // the only source an inbound connection may come from

	active  atomic.Bool
	roleCh  chan struct{} // poked on every role change
	roleSet atomic.Bool   // SetActive called at least once

	// Events captured for the peer (active side, while a session runs).
	capture atomic.Bool
	mu      sync.Mutex
	pending []balancer.DialogEvent
	over    bool // MaxPending exceeded: resync
	wake    chan struct{}

	// The inbound session (standby side): closed when this box turns
	// active, or replaced by a newer one that has proven the session key.
	// inDone is closed when its handler has returned.
	// hsConn is the one inbound connection that has not proven the
	// session key yet (see admit).
	inMu   sync.Mutex
	inConn net.Conn
	inDone chan struct{}
	hsConn net.Conn
	logged atomic.Int64 // unix ns a refused source was last logged

	st stats
}

// New checks opt; the balancer is given with Attach before Run.
func New(opt Options) (*Replica, error) {
	o, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	peer := netip.MustParseAddrPort(o.Peer).Addr().Unmap()
	if ap, err := netip.ParseAddrPort(o.Listen); err == nil && ap.Addr().IsUnspecified() {
		o.Logger.Warn("replication: listen has no address of its own: this box dials the peer from whichever address the kernel picks, "+
			"and the peer accepts the stream only from the address it has as its peer", "listen", o.Listen, "peer", o.Peer)
	}
	return &Replica{opt: o, log: o.Logger, peerIP: peer, roleCh: make(chan struct{}, 1), wake: make(chan struct{}, 1)}, nil
}

// Attach gives the Replica its balancer. It must be called before Run.
func (r *Replica) Attach(b Balancer) { r.bal = b }

// DialogEvent implements balancer.DialogObserver: it queues the change
// for the peer when a session is streaming, and costs an atomic load
// otherwise. It never blocks.
func (r *Replica) DialogEvent(e balancer.DialogEvent) {
	if !r.capture.Load() {
		return
	}
	r.mu.Lock()
	if len(r.pending) >= r.opt.MaxPending {
		r.over = true
	} else {
		r.pending = append(r.pending, e)
	}
	n := len(r.pending)
	r.mu.Unlock()
	if n == 1 || n == maxEvents {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// SetActive tells the Replica whether this box holds the SIP VIP. The
// active box streams to the peer and its balancer probes and expires;
// the standby mirrors. The balancer's mode follows at once.
func (r *Replica) SetActive(on bool) {
	first := !r.roleSet.Swap(true)
	if r.active.Swap(on) == on && !first {
		return
	}
	if r.bal != nil {
		r.bal.SetStandby(!on)
	}
	r.log.Info("replication role", "role", roleName(on))
	if on {
		r.closeInbound()
	}
	select {
	case r.roleCh <- struct{}{}:
	default:
	}
}

// Active reports whether this box streams (holds the VIP).
func (r *Replica) Active() bool { return r.active.Load() }

func roleName(active bool) string {
	if active {
		return "active"
	}
	return "standby"
}

// Run accepts the peer's stream and, while active, streams to the peer,
// until ctx ends.
func (r *Replica) Run(ctx context.Context) error {
	if r.bal == nil {
		return errors.New("replica: no balancer attached")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", r.opt.Listen)
	if err != nil {
		return fmt.Errorf("replica: listen: %w", err)
	}
	r.log.Info("replication listening", "listen", ln.Addr().String(), "peer", r.opt.Peer)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		r.acceptLoop(ctx, ln)
	}()
	go func() {
		defer wg.Done()
		r.sendLoop(ctx)
	}()
	<-ctx.Done()
	ln.Close()
	r.closeInbound()
	wg.Wait()
	return nil
}

// closeInbound ends the session from the peer, if any.
func (r *Replica) closeInbound() {
	r.inMu.Lock()
	if r.inConn != nil {
		r.inConn.Close()
		r.inConn, r.inDone = nil, nil
	}
	if r.hsConn != nil {
		r.hsConn.Close()
		r.hsConn = nil
	}
	r.inMu.Unlock()
}
