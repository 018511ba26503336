package balancer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/sipedge/sipedge/daemon/balancer/request"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emiago/sipgo/sip"
)

// listener is one socket the balancer listens on.
type listener struct {
	transport string // "udp" | "tcp" | "tls"
	addr      netip.AddrPort
	host      string // addr's IP as text, for our Via
	udp       *net.UDPConn
	udpSend   *udpSender // sends on udp (raw sendto on Linux)
	tcp       *net.TCPListener
	rrURI     sip.Uri                // our Record-Route URI on this listener (;lr)
	rr        *sip.RecordRouteHeader // that URI as a header, shared by every request (never changed)
	rrLine    string                 // that header as a line, CRLF included, for the raw INVITE path
	viaTp     string                 // "UDP" | "TCP" | "TLS"
	twin      *listener              // the Core-facing twin of a UDP listener (coresock.go); nil without
	coreSide  bool                   // this is a twin
}

// inbound is one received message on its way to a worker.
type inbound struct {
	data []byte
	src  netip.AddrPort
	lis  *listener
	conn *tcpConn      // nil for UDP
	at   time.Duration // when it was queued (since Balancer.epoch)
	// trusted: a Core, the box itself or a trusted network (relay.go)
	trusted bool
}

func newListener(la listenAddr) *listener {
	l := &listener{transport: la.transport, addr: la.addr, host: la.addr.Addr().String(), viaTp: "UDP"}
	l.rrURI = sip.Uri{Scheme: "sip", Host: la.addr.Addr().String(), Port: int(la.addr.Port()), UriParams: sip.NewParams()}
	switch la.transport {
	case "tcp":
		l.viaTp = "TCP"
		l.rrURI.UriParams.Add("transport", "tcp")
	case "tls":
		l.viaTp = "TLS"
		l.rrURI.UriParams.Add("transport", "tls")
	}
	l.rrURI.UriParams.Add("lr", "")
	l.rr = &sip.RecordRouteHeader{Address: l.rrURI}
	var buf bytes.Buffer
	request.HeaderLine(&buf, l.rr)
	l.rrLine = buf.String()
	return l
}

func (b *Balancer) listenConfig() net.ListenConfig {
	return net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = tuneSocket(fd, network, b.opt.UDPReadBuffer, b.opt.UDPWriteBuffer)
		})
		if err != nil {
			return err
		}
		return serr
	}}
}

func (b *Balancer) open(ctx context.Context, l *listener) error {
	lc := b.listenConfig()
	switch l.transport {
	case "udp":
		pc, err := lc.ListenPacket(ctx, "udp", l.addr.String())
		if err != nil {
			return fmt.Errorf("listen udp %s: %w", l.addr, err)
		}
		l.udp = pc.(*net.UDPConn)
		if l.addr.Port() == 0 { // a twin on a port the kernel chose
			l.addr = netip.AddrPortFrom(l.addr.Addr(), uint16(l.udp.LocalAddr().(*net.UDPAddr).Port))
		}
		if l.udpSend, err = newUDPSender(l.udp); err != nil {
			l.udp.Close()
			return fmt.Errorf("listen udp %s: %w", l.addr, err)
		}
	case "tcp", "tls":
		ln, err := lc.Listen(ctx, "tcp", l.addr.String())
		if err != nil {
			return fmt.Errorf("listen tcp %s: %w", l.addr, err)
		}
		l.tcp = ln.(*net.TCPListener)
	}
	return nil
}

// readUDP is the one reader goroutine of a UDP socket: it reads batches
// of datagrams (recvmmsg on Linux), copies each out of the reused buffers
// and hands it to its Call-ID's worker.
func (b *Balancer) readUDP(l *listener) {
	defer b.wg.Done()
	r, err := newUDPBatch(l.udp, udpBatchSize, 65536)
	if err != nil {
		b.log.Error("udp reader", "listen", l.addr, "err", err)
		return
	}
	for {
		n, err := r.read()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			b.log.Warn("udp read", "listen", l.addr, "err", err)
			time.Sleep(time.Millisecond)
			continue
		}
		for i := 0; i < n; i++ {
			p, src, _ := r.msg(i)
			if len(p) == 0 || (len(p) <= 4 && isKeepalive(p)) || !src.IsValid() {
				continue
			}
			data := make([]byte, len(p))
			copy(data, p)
			// While the reader keeps up (its read did not fill the
			// batch), a message whose worker is idle is handled right
			// here; a full batch means a backlog in the kernel, and then
			// the workers share the load (and admission control sees
			// it in their queues).
			b.dispatch(inbound{data: data, src: src, lis: l}, n < udpBatchSize)
		}
	}
}

// udpBatchSize is how many datagrams one read may return. A read that
// fills it tells the reader it is behind: 64 is rarely reached below
// the balancer's capacity (the 2x overload bench fills it constantly).
const udpBatchSize = 64

func isKeepalive(p []byte) bool {
	for _, c := range p {
		if c != '\r' && c != '\n' && c != 0 {
			return false
		}
	}
	return true
}

// dispatch hands a message to the worker owning its Call-ID. When that
// worker's queue is full a datagram is dropped (a UDP sender
// retransmits) and a stream's reader waits. inline: the reader is not
// behind, and may handle the message itself when its worker is idle.
func (b *Balancer) dispatch(in inbound, inline bool) {
	b.stats.In.count(in.data)
	var v Verdict
	if b.opt.Screen != nil {
		if v = b.opt.Screen(in.src, in.lis.transport, in.data); v.Drop || v.Code != 0 {
			b.screened(in, v)
			return
		}
	}
	in.trusted = b.trusted(v, in.src) || (in.conn != nil && in.conn.trusted)
	if in.lis.coreSide && !b.admitOnTwin(in) {
		return
	}
	// The ACK of a 503 we shed (or of another stateless reply) ends here,
	// unparsed: under overload there is one for every call refused.
	if b.absorbStatelessAck(in.data) {
		return
	}
	// Replies to our OPTIONS probes skip the queues: a Core's health must
	// not be judged by how long our own queue is under overload.
	if bytes.HasPrefix(in.data, []byte("SIP/2.0 ")) && bytes.Contains(in.data, b.probePrefixB) {
		b.handle(in)
		return
	}
	i := callIDHash(in.data) % uint32(len(b.workers))
	w, ws := b.workers[i], &b.workerSync[i]
	if in.lis.coreSide {
		w = b.urgent[i]
	} else if b.shedNew(in, len(w), time.Duration(ws.lag.Load())) {
		return
	}
	if inline && ws.pending.Load() == 0 && ws.mu.TryLock() {
		// The worker has nothing queued or in hand, and cannot start
		// anything while we hold its lock: handling the message here
		// keeps the call's order and saves the hand-off (a wake-up of
		// the worker per message when the balancer is not busy).
		if ws.pending.Load() == 0 {
			b.handle(in)
			ws.mu.Unlock()
			return
		}
		ws.mu.Unlock()
	}
	ws.pending.Add(1)
	in.at = time.Since(b.epoch)
	select {
	case w <- in:
		return
	default:
	}
	if in.conn != nil {
		// A stream's sender does not retransmit: its reader waits for
		// room instead, and TCP's flow control holds the sender back.
		select {
		case w <- in:
			return
		case <-b.stop:
		}
	}
	ws.pending.Add(-1)
	b.stats.QueueDrops.Add(1)
}

// workerSync lets a reader handle a message itself, in order, when the
// message's worker is idle: mu is held while a message is handled,
// pending counts the messages queued to the worker or in its hands. lag
// tells admission control how far behind the worker is.
type workerSync struct {
	mu      sync.Mutex
	pending atomic.Int64
	lag     atomic.Int64 // ns the last message dequeued had waited, once behind long enough (noteLag)
	// behindSince (since Balancer.epoch; 0: not behind) is when the
	// messages dequeued started to have waited ShedDelay or more. The
	// worker alone writes it.
	behindSince time.Duration
	behindWait  time.Duration // the wait then
	shedding    bool          // the lag is seen (until the wait is under ShedDelay)
	_           [16]byte      // own cache line
}

// noteLag records the wait of a message queued at `at` and dequeued at
// now. Admission sees it only once messages have waited shedDelay or
// more for shedDelay/2 in a row and the wait is not shrinking: a worker
// descheduled for a moment (a busy host, a GC pause) leaves a backlog
// that drains, slowly near full load, and is no reason to refuse calls;
// a backlog that holds or grows is. Once seen, it is seen until the
// wait is under shedDelay again.
func (ws *workerSync) noteLag(now, at, shedDelay time.Duration) {
	d := now - at
	switch {
	case shedDelay <= 0 || d < shedDelay:
		ws.behindSince, ws.shedding = 0, false
		ws.lag.Store(int64(d))
	case ws.shedding:
		ws.lag.Store(int64(d))
	case ws.behindSince == 0:
		ws.behindSince, ws.behindWait = now, d
		ws.lag.Store(0)
	case now-ws.behindSince >= shedDelay/2 && d >= ws.behindWait:
		ws.shedding = true
		ws.lag.Store(int64(d))
	case now-ws.behindSince >= shedDelay/2:
		// Draining: judge the next stretch from here.
		ws.behindSince, ws.behindWait = now, d
	}
}

// callIDHash finds the Call-ID header in raw bytes (long or compact form)
// and hashes its value (FNV-1a); 0 when there is none.
func callIDHash(p []byte) uint32 {
	for i := 0; i < len(p); {
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			return 0
		}
		line := p[i : i+j]
		i += j + 1
		if len(line) <= 1 { // end of headers
			return 0
		}
		k := bytes.IndexByte(line, ':')
		if k < 0 {
			continue
		}
		name := bytes.TrimSpace(line[:k])
		if bytes.EqualFold(name, []byte("Call-ID")) || (len(name) == 1 && (name[0] == 'i' || name[0] == 'I')) {
			v := bytes.TrimSpace(line[k+1:])
			h := uint32(2166136261)
			for _, c := range v {
				h ^= uint32(c)
				h *= 16777619
			}
			return h
		}
	}
	return 0
}

// send writes data to dst over transport: over UDP from the first UDP
// listener (the VIP, which our Via and Record-Route name), or to a
// loopback destination from a loopback listener if there is one
// (udpFrom).
func (b *Balancer) send(transport string, dst netip.AddrPort, data []byte, conn *tcpConn) error {
	return b.sendFrom(transport, dst, data, conn, false)
}

// sendFrom is send, from the Core-facing twin when twin is set and
// there is one (a request on a branch toward a Core: coresock.go).
func (b *Balancer) sendFrom(transport string, dst netip.AddrPort, data []byte, conn *tcpConn, twin bool) error {
	if transport == "tcp" || transport == "tls" {
		if conn == nil {
			var err error
			if conn, err = b.tcpConnTo(transport, dst); err != nil {
				return err
			}
		}
		if err := conn.write(data); err != nil {
			b.dropConn(conn)
			return fmt.Errorf("tcp write %s: %w", dst, err)
		}
		b.stats.Out.count(data)
		return nil
	}
	l, err := b.udpFrom(dst, twin)
	if err != nil {
		return err
	}
	if err := l.udpSend.send(data, dst); err != nil {
		b.stats.SendErrors.Add(1)
		return fmt.Errorf("udp write %s: %w", dst, err)
	}
	b.stats.Out.count(data)
	return nil
}
