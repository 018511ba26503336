package replica

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/sipedge/sipedge/daemon/balancer"
)

var errRefused = errors.New("the peer holds the VIP too: it refused the stream")

// sendLoop streams to the peer while this box is active: connect,
// handshake, snapshot, then events and Core changes until the session
// breaks or the box turns standby; then again after RetryInterval.
func (r *Replica) sendLoop(ctx context.Context) {
	var lastErr string
	for {
		if !r.active.Load() {
			select {
			case <-ctx.Done():
				return
			case <-r.roleCh:
				continue
			}
		}
		err := r.stream(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil && err.Error() != lastErr {
			r.log.Warn("replication stream ended", "peer", r.opt.Peer, "err", err)
		}
		lastErr = ""
		if err != nil {
			lastErr = err.Error()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(r.opt.RetryInterval):
		}
	}
}

func (r *Replica) dial(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: time.Second}
	// Connect from this box's replication address, so the peer sees the
	// stream come from where the configuration says the box is.
	if ap, err := netip.ParseAddrPort(r.opt.Listen); err == nil && !ap.Addr().IsUnspecified() {
		d.LocalAddr = &net.TCPAddr{IP: ap.Addr().AsSlice()}
	}
	return d.DialContext(ctx, "tcp", r.opt.Peer)
}

// stream runs one outbound session.
func (r *Replica) stream(ctx context.Context) error {
	conn, err := r.dial(ctx)
	if err != nil {
		r.st.connectErrors.Add(1)
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	f := newFramer(conn, r.opt.Key, r.opt.now)
	conn.SetDeadline(time.Now().Add(hsTimeout))
	var mine hello
	mine.node = r.opt.Node
	mine.tagged = !r.opt.previous
	rand.Read(mine.nonce[:])
	f.write(frameHello, mine.encode())
	if err := f.flush(); err != nil {
		r.st.connectErrors.Add(1)
		return fmt.Errorf("handshake: %w", err)
	}
	fr, err := f.read(maxHelloBody)
	if err == nil && fr.typ != frameHello {
		err = fmt.Errorf("%w: type %d before hello", errBadFrame, fr.typ)
	}
	var peer hello
	if err == nil {
		peer, err = decodeHello(fr.body)
	}
	if err == nil && peer.echo != mine.nonce {
		err = fmt.Errorf("%w: hello does not answer ours", errBadFrame)
	}
	if err != nil {
		r.st.connectErrors.Add(1)
		r.st.reject(err)
		return fmt.Errorf("handshake: %w", err)
	}
	if peer.refuse {
		r.st.refused.Add(1)
		return errRefused
	}
	toStandby, toActive := sessionKeys(r.opt.Key, mine.nonce, peer.nonce)
	f.session(toStandby, toActive)
	// Tags and next hops go only to a peer that reads them: the previous
	// release drops the session on a frame type it does not know.
	tagged := peer.tagged && !r.opt.previous
	evType, snapType := uint8(frameEvents), uint8(frameSnapshot)
	if tagged {
		evType, snapType = frameEventsTagged, frameSnapshotTagged
	}

	// Capture from here: every change after this point reaches the peer
	// as an event, replayed over the snapshot taken below.
	r.mu.Lock()
	r.pending, r.over = r.pending[:0], false
	r.mu.Unlock()
	r.capture.Store(true)
	defer func() {
		r.capture.Store(false)
		r.mu.Lock()
		r.pending = r.pending[:0]
		r.mu.Unlock()
	}()

	conn.SetDeadline(time.Now().Add(10 * time.Second))
	coresJSON, err := json.Marshal(r.bal.ExportCores())
	if err != nil {
		return err
	}
	f.write(frameCores, coresJSON)
	dialogs := r.bal.ExportDialogs()
	if err := encodeFrames(dialogs, tagged, snapshotRecord, func(b []byte) error { return f.write(snapType, b) }); err != nil {
		return err
	}
	f.write(frameSnapEnd, binary.BigEndian.AppendUint32(nil, uint32(len(dialogs))))
	if err := f.flush(); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	r.st.snapshotsSent.Add(1)
	r.st.bytesSent.Add(f.written)
	written := f.written
	r.st.framesSent.Add(f.outSeq - 1)
	r.st.sentSeq.Store(f.outSeq - 1)
	r.st.ackedSeq.Store(0)
	r.st.peerNode.Store(&peer.node)
	r.st.since.Store(time.Now().UnixNano())
	r.st.sessions.Add(1)
	r.st.connected.Store(true)
	defer r.st.connected.Store(false)
	r.log.Info("replication streaming to the peer", "peer", r.opt.Peer, "node", peer.node, "dialogs", len(dialogs))
	conn.SetDeadline(time.Time{})

	// Acknowledgements.
	lastAck := time.Now()
	ackErr := make(chan error, 1)
	acks := make(chan time.Time, 16)
	go func() {
		for {
			fr, err := f.read(ackLen)
			if err == nil && (fr.typ != frameAck || len(fr.body) != ackLen) {
				err = fmt.Errorf("%w: type %d from the standby", errBadFrame, fr.typ)
			}
			if err != nil {
				r.st.reject(err)
				ackErr <- err
				return
			}
			r.st.ackedSeq.Store(binary.BigEndian.Uint64(fr.body))
			sent := time.Unix(0, int64(binary.BigEndian.Uint64(fr.body[8:])))
			r.st.ackLag.Store(int64(r.opt.now().Sub(sent))) // our own stamp, our own clock
			select {
			case acks <- time.Now():
			default:
			}
		}
	}()

	coreTick := time.NewTicker(r.opt.CoreInterval)
	defer coreTick.Stop()
	lastSent := time.Now()
	var spare []balancer.DialogEvent
	send := func() error {
		conn.SetWriteDeadline(time.Now().Add(3 * r.opt.KeepAlive))
		err := f.flush()
		r.st.bytesSent.Add(f.written - written)
		written = f.written
		r.st.sentSeq.Store(f.outSeq - 1)
		lastSent = time.Now()
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-ackErr:
			return fmt.Errorf("reading acknowledgements: %w", err)
		case at := <-acks:
			lastAck = at
		case <-r.roleCh:
			if !r.active.Load() {
				r.log.Info("replication: this box is standby now; stream closed")
				return nil
			}
		case <-coreTick.C:
			b, err := json.Marshal(r.bal.ExportCores())
			if err != nil {
				return err
			}
			if !bytes.Equal(b, coresJSON) || time.Since(lastSent) >= r.opt.KeepAlive {
				coresJSON = b
				f.write(frameCores, b)
				r.st.framesSent.Add(1)
				if err := send(); err != nil {
					return fmt.Errorf("send: %w", err)
				}
			}
			if r.st.sentSeq.Load() > r.st.ackedSeq.Load() && time.Since(lastAck) > 3*r.opt.KeepAlive {
				return fmt.Errorf("the peer acknowledged nothing for %v", time.Since(lastAck).Round(time.Millisecond))
			}
		case <-r.wake:
			t := time.NewTimer(r.opt.BatchDelay)
			r.mu.Lock()
			full := len(r.pending) >= maxEvents
			r.mu.Unlock()
			if !full {
				select {
				case <-ctx.Done():
					t.Stop()
					return nil
				case <-t.C:
				}
			}
			t.Stop()
			r.mu.Lock()
			evs, over := r.pending, r.over
			r.pending = spare[:0]
			r.mu.Unlock()
			if over {
				r.st.resyncs.Add(1)
				return fmt.Errorf("more than %d events waiting: resynchronising", r.opt.MaxPending)
			}
			encodeFrames(evs, tagged, eventRecord, func(b []byte) error {
				r.st.framesSent.Add(1)
				return f.write(evType, b)
			})
			r.st.eventsSent.Add(uint64(len(evs)))
			spare = evs
			if err := send(); err != nil {
				return fmt.Errorf("send: %w", err)
			}
			// More may have come while we sent: look again.
			r.mu.Lock()
			more := len(r.pending) > 0
			r.mu.Unlock()
			if more {
				select {
				case r.wake <- struct{}{}:
				default:
				}
			}
		}
	}
}
