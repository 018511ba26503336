package balancer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// TCP connections: one reader goroutine each, framing messages by their
// Content-Length. Every connection, accepted or dialled to a Core, is
// closed after TCPIdleTimeout without a message either way, or when a
// message is not complete TCPMessageTimeout after its first byte.
// Inbound connections are admitted at accept: a banned source (the
// Screen's verdict on nil data), TCPMaxConnections reached or the
// source's TCPMaxPerSource reached close them at once. A message the
// Screen drops closes its connection.

// tcpConn is one TCP connection, accepted or dialled.
type tcpConn struct {
	c   net.Conn
	mu  sync.Mutex // serialises writes
	key netip.AddrPort

	inbound    bool       // accepted: counted toward the caps
	trusted    bool       // a verified TLS client certificate that security.trusted names (tlsconn.go)
	identity   string     // that certificate's first name
	silent     bool       // accepted and nothing read yet: the message timeout applies (half-open)
	source     netip.Addr // its per-source key; invalid when exempt
	released   bool       // counts given back (guarded by Balancer.connMu)
	idle       int64      // ns: TCPIdleTimeout
	msgTimeout int64      // ns: TCPMessageTimeout

	last atomic.Int64 // mono ns of the last message read or written

	// The reader's own: the message in progress, and whether the screen
	// dropped a message (the connection is closed for it).
	inMsg       bool
	msgStart    int64 // mono ns its first byte was read
	screenedOut bool
	// first is the byte an idle reader waited for without a buffer
	// (waitData), given to the next Read when hasFirst.
	first    [1]byte
	hasFirst bool
}

// monoBase is the origin of monoOf: times as monotonic ns in one int64,
// cheap to keep in an atomic.
var monoBase = time.Now()

func monoOf(t time.Time) int64 { return int64(t.Sub(monoBase)) }

func (b *Balancer) newTCPConn(c net.Conn, key netip.AddrPort, inbound bool) *tcpConn {
	tc := &tcpConn{c: c, key: key, inbound: inbound, silent: inbound,
		idle: int64(b.opt.TCPIdleTimeout), msgTimeout: int64(b.opt.TCPMessageTimeout)}
	now := monoOf(time.Now())
	tc.last.Store(now)
	tc.msgStart = now
	return tc
}

func (t *tcpConn) write(data []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	t.c.SetWriteDeadline(now.Add(2 * time.Second))
	_, err := t.c.Write(data)
	if err == nil {
		t.last.Store(monoOf(now))
	}
	return err
}

var (
	errStreamTooLarge   = errors.New("message exceeds the size limit")
	errBadContentLength = errors.New("bad Content-Length")
	errIdleTimeout      = errors.New("idle timeout")
	errMessageTimeout   = errors.New("message not complete in time")
	errSilent           = errors.New("nothing sent in time after connecting")
)

// Read is what the reader's bufio.Reader reads from. The read deadline
// is kept no later than the connection's next expiry (the idle timeout
// or, for a message in progress, the message timeout) and at most the
// message timeout ahead, so it never has to be moved as messages come
// and go: when it fires, Read ends the connection if an expiry has come,
// else arms the next deadline and reads on.
func (t *tcpConn) Read(p []byte) (int, error) {
	if t.hasFirst && len(p) > 0 {
		t.hasFirst = false
		p[0] = t.first[0]
		return 1, nil
	}
	for {
		n, err := t.c.Read(p)
		if n > 0 {
			t.silent = false
			if !t.inMsg {
				t.inMsg, t.msgStart = true, monoOf(time.Now())
			}
			return n, nil
		}
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		if err := t.arm(); err != nil {
			return 0, err
		}
	}
}

// arm sets the read deadline, or returns why the connection has expired.
func (t *tcpConn) arm() error {
	wall := time.Now()
	now := monoOf(wall)
	due := t.last.Load() + t.idle
	expired := errIdleTimeout
	switch {
	case t.inMsg:
		due, expired = t.msgStart+t.msgTimeout, errMessageTimeout
	case t.silent && t.msgStart+t.msgTimeout < due:
		// An accepted connection that sends nothing (half-open) is
		// held the message timeout, not the idle one.
		due, expired = t.msgStart+t.msgTimeout, errSilent
	}
	if now >= due {
		return expired
	}
	return t.c.SetReadDeadline(wall.Add(time.Duration(min(due, now+t.msgTimeout) - now)))
}

// between marks the end of a message or a keepalive: the idle timeout
// starts again, and the next message's clock with its first byte (now
// when some are already buffered).
func (t *tcpConn) between(buffered int) {
	now := monoOf(time.Now())
	t.last.Store(now)
	t.inMsg, t.msgStart = buffered > 0, now
}

// sourceKey is what TCPMaxPerSource counts by: the address, or the /64
// of an IPv6 one (a host has a whole /64 to spread over).
func sourceKey(a netip.Addr) netip.Addr {
	if a.Is6() {
		return netip.PrefixFrom(a, 64).Masked().Addr()
	}
	return a
}

// SetTCPExempt replaces Options.TCPExempt (a reload of the trusted
// networks); connections open are not looked at again.
func (b *Balancer) SetTCPExempt(p []netip.Prefix) {
	p = slices.Clone(p)
	b.tcpExempt.Store(&p)
}

// exempt reports whether a source is never refused by the caps: a
// TCPExempt network or a Core.
func (b *Balancer) exempt(a netip.Addr) bool {
	for _, p := range *b.tcpExempt.Load() {
		if p.Contains(a) {
			return true
		}
	}
	return b.pool.hasAddr(a)
}

// admit registers an accepted connection, or returns false and why it
// is refused (a tcpRefused reason).
func (b *Balancer) admit(tc *tcpConn) (int, bool) {
	if b.opt.Screen != nil && b.opt.Screen(tc.key, "tcp", nil).Drop {
		return tcpRefusedBanned, false
	}
	exempt := b.exempt(tc.key.Addr())
	b.connMu.Lock()
	defer b.connMu.Unlock()
	if !exempt {
		src := sourceKey(tc.key.Addr())
		switch {
		case b.nTCPIn >= b.opt.TCPMaxConnections:
			return tcpRefusedMaxConnections, false
		case b.perSource[src] >= b.opt.TCPMaxPerSource:
			return tcpRefusedPerSource, false
		}
		b.perSource[src]++
		tc.source = src
	}
	b.nTCPIn++
	b.conns[tc.key] = tc
	return 0, true
}

func (b *Balancer) acceptTCP(l *listener) {
	defer b.wg.Done()
	for {
		c, err := l.tcp.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			b.log.Warn("tcp accept", "listen", l.addr, "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		ap := c.RemoteAddr().(*net.TCPAddr).AddrPort()
		tc := b.newTCPConn(c, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true)
		if why, ok := b.admit(tc); !ok {
			b.stats.TCPRefused[why].Add(1)
			c.SetLinger(0) // a reset: nothing kept in TIME_WAIT for a flood
			c.Close()
			continue
		}
		b.wg.Add(1)
		if l.transport == "tls" {
			go b.serveTLS(l, tc)
		} else {
			go b.readTCP(l, tc)
		}
	}
}

// addConn registers a connection the balancer dialled and returns the
// one to use: tc, or the one another goroutine dialled to the same
// place meanwhile (a probe and a request, say), tc then being closed:
// a connection left out of the table would never be closed, and its
// reader would hold up Close. nil once the balancer is closing. A tc
// registered counts in b.wg: the caller starts its reader.
func (b *Balancer) addConn(tc *tcpConn) *tcpConn {
	b.connMu.Lock()
	defer b.connMu.Unlock()
	select {
	case <-b.stop:
		tc.c.Close()
		return nil
	default:
	}
	if old := b.conns[tc.key]; old != nil {
		tc.c.Close()
		return old
	}
	b.conns[tc.key] = tc
	b.nTCPOut++
	b.wg.Add(1) // for its reader; under connMu, so never after Close's Wait began
	return tc
}

// dropConn closes a connection and gives back its counts (once).
func (b *Balancer) dropConn(tc *tcpConn) {
	b.connMu.Lock()
	if b.conns[tc.key] == tc {
		delete(b.conns, tc.key)
	}
	if !tc.released {
		tc.released = true
		switch {
		case !tc.inbound:
			b.nTCPOut--
		case tc.source.IsValid():
			if b.perSource[tc.source]--; b.perSource[tc.source] <= 0 {
				delete(b.perSource, tc.source)
			}
			fallthrough
		default:
			b.nTCPIn--
		}
	}
	b.connMu.Unlock()
	tc.c.Close()
}

// TCPConnections returns the TCP connections open: accepted and dialled.
func (b *Balancer) TCPConnections() (in, out int) {
	b.connMu.Lock()
	defer b.connMu.Unlock()
	return b.nTCPIn, b.nTCPOut
}

// waitData blocks until the connection's next byte arrives (or it
// ends), keeping that byte for the next Read: an idle connection waits
// without a read buffer.
func (t *tcpConn) waitData() error {
	n, err := t.Read(t.first[:])
	if n == 1 {
		t.hasFirst = true
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// streamReaders are the read buffers of stream connections, held only
// while a connection has bytes to frame: an idle one holds none.
var streamReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, streamReadBuffer) }}

// streamReadBuffer is a stream connection's read buffer: a header line
// longer than this is refused as too large.
const streamReadBuffer = 16384

// readTCP is a connection's reader: it frames messages and hands them
// on until the connection ends, then counts why it did. Between
// messages, with nothing buffered, it gives its read buffer back and
// waits for the next byte without one.
func (b *Balancer) readTCP(l *listener, tc *tcpConn) {
	defer b.wg.Done()
	defer b.dropConn(tc)
	var r *bufio.Reader
	defer func() {
		if r != nil {
			r.Reset(nil)
			streamReaders.Put(r)
		}
	}()
	var data []byte
	err := tc.arm()
	for err == nil {
		if r == nil {
			if err = tc.waitData(); err != nil {
				break
			}
			r = streamReaders.Get().(*bufio.Reader)
			r.Reset(tc)
		}
		if data, err = readStreamMessage(r, b.opt.MaxMessageBytes, tc); err != nil {
			break
		}
		buffered := r.Buffered()
		if buffered == 0 {
			r.Reset(nil)
			streamReaders.Put(r)
			r = nil
		}
		if data == nil {
			continue // a keepalive
		}
		tc.between(buffered)
		// With nothing more buffered the reader keeps up: as the UDP
		// readers do, it may handle the message itself.
		b.dispatch(inbound{data: data, src: tc.key, lis: l, conn: tc}, buffered == 0)
	}
	reason := b.streamEnded(l, tc, data, err)
	b.stats.TCPClosed[reason].Add(1)
	b.warnClosed(reason, tc, err)
}

// badInputEnds say why a connection was closed for its peer's bad input:
// each such end has a Warn line, at most one a second per reason (the
// count held back carried on the next), beside its counter. A TLS
// handshake's failure has its own line (tlsLogLimit).
var badInputEnds = [len(tcpClosedReasons)]string{
	tcpClosedMessageTimeout: "a message not complete within the message timeout",
	tcpClosedMalformed:      "framing lost (bad Content-Length, or over the size limit)",
	tcpClosedSilent:         "nothing sent within the message timeout (half-open)",
	tcpClosedCut:            "closed by the peer in the middle of a message",
}

// warnClosed writes the Warn line of a connection closed for bad input.
func (b *Balancer) warnClosed(reason int, tc *tcpConn, err error) {
	why := badInputEnds[reason]
	if why == "" {
		return
	}
	if ok, skipped := b.closeLog[reason].allow(); ok {
		b.log.Warn("stream closed", "reason", tcpClosedReasons[reason], "why", why, "peer", tc.key, "err", err, "not_logged_since_last", skipped)
	}
}

// streamEnded returns why a connection's reading ended. A request whose
// framing failed but whose headers were read is answered before the
// connection is closed (RFC 3261 18.3: with the framing lost, nothing
// after it can be read): 400 for a bad Content-Length, 513 for a body
// over the size limit.
func (b *Balancer) streamEnded(l *listener, tc *tcpConn, hdr []byte, err error) int {
	switch {
	case tc.screenedOut:
		return tcpClosedScreened
	case errors.Is(err, errIdleTimeout):
		return tcpClosedIdle
	case errors.Is(err, errMessageTimeout):
		return tcpClosedMessageTimeout
	case errors.Is(err, errSilent):
		return tcpClosedSilent
	case errors.Is(err, net.ErrClosed):
		return tcpClosedLocal
	case errors.Is(err, errBadContentLength):
		b.stats.Malformed.Add(1)
		b.refuseStream(inbound{data: hdr, src: tc.key, lis: l, conn: tc}, 400, "Bad Content-Length")
	case errors.Is(err, errStreamTooLarge):
		b.stats.TooLarge.Add(1)
		b.refuseStream(inbound{data: hdr, src: tc.key, lis: l, conn: tc}, 513, "Message Too Large")
	case tc.inMsg:
		return tcpClosedCut // the peer went (or the read failed) with a message begun
	default:
		if !errors.Is(err, io.EOF) {
			b.log.Debug("tcp read", "peer", tc.key, "err", err)
		}
		return tcpClosedPeer
	}
	return tcpClosedMalformed
}

// refuseStream answers a request whose headers were read (hdr) but whose
// body cannot be, unless the screen drops it.
func (b *Balancer) refuseStream(in inbound, code int, reason string) {
	if in.data == nil {
		return
	}
	b.stats.In.count(in.data)
	v := Verdict{Code: code, Reason: reason}
	if b.opt.Screen != nil {
		if sv := b.opt.Screen(in.src, in.lis.transport, in.data); sv.Drop || sv.Code != 0 {
			v = sv
		}
	}
	b.screened(in, v)
}

// readStreamMessage reads one SIP message from a stream: headers up to the
// blank line, then Content-Length bytes of body. Leading CRLFs
// (keepalives) are skipped; tc (nil in tests) is told of them, and with
// tc a keepalive with nothing buffered after it returns no message and
// no error. A bad Content-Length, or one that takes the message over
// limit, returns the headers read (without a bad Content-Length line)
// with the error.
func readStreamMessage(r *bufio.Reader, limit int, tc *tcpConn) ([]byte, error) {
	var msg []byte
	var bad error
	cl, size := -1, 0
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			if err == bufio.ErrBufferFull {
				return nil, errStreamTooLarge
			}
			return nil, err
		}
		t := bytes.TrimRight(line, "\r\n")
		if len(msg) == 0 && len(t) == 0 {
			if tc != nil && r.Buffered() == 0 {
				tc.between(0)
				return nil, nil // a keepalive, and nothing after it yet
			}
			continue // keepalive CRLF before a start line
		}
		if size += len(line); size > limit {
			return nil, errStreamTooLarge
		}
		if len(t) == 0 {
			msg = append(msg, line...)
			break
		}
		if name, val, ok := bytes.Cut(t, []byte{':'}); ok {
			name = bytes.TrimSpace(name)
			if bytes.EqualFold(name, []byte("Content-Length")) || bytes.EqualFold(name, []byte("l")) {
				n, err := strconv.Atoi(string(bytes.TrimSpace(val)))
				if err != nil || n < 0 {
					bad = fmt.Errorf("%w %q", errBadContentLength, val)
					continue // left out of the headers parsed for the 400
				}
				cl = n
			}
		}
		msg = append(msg, line...)
	}
	if bad != nil {
		return msg, bad
	}
	if cl < 0 {
		cl = 0 // RFC 3261 18.3 requires it on streams; treat a missing one as empty
	}
	if len(msg)+cl > limit {
		return msg, errStreamTooLarge
	}
	body := make([]byte, cl)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return append(msg, body...), nil
}

// tcpConnTo returns the connection to dst over tp (tcp or tls), dialling
// one if needed.
func (b *Balancer) tcpConnTo(tp string, dst netip.AddrPort) (*tcpConn, error) {
	b.connMu.Lock()
	tc := b.conns[dst]
	b.connMu.Unlock()
	if tc != nil {
		return tc, nil
	}
	out := b.outFor(tp, dst.Addr())
	d := net.Dialer{Timeout: time.Second}
	if out != nil {
		d.LocalAddr = &net.TCPAddr{IP: out.addr.Addr().AsSlice()}
	}
	c, err := d.Dial("tcp", dst.String())
	if err != nil {
		return nil, fmt.Errorf("%s dial %s: %w", tp, dst, err)
	}
	if tp == "tls" {
		if tc, err = b.dialTLS(c, dst); err != nil {
			return nil, err
		}
	} else {
		tc = b.newTCPConn(c, dst, false)
	}
	switch got := b.addConn(tc); got {
	case nil:
		return nil, fmt.Errorf("tcp dial %s: %w", dst, net.ErrClosed)
	case tc:
	default:
		return got, nil
	}
	go b.readTCP(out, tc)
	return tc, nil
}
