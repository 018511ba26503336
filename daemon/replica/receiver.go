package replica

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"time"

	"github.com/sipedge/sipedge/daemon/balancer"
)

func (r *Replica) acceptLoop(ctx context.Context, ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		if r.admit(conn) {
			go r.serve(ctx, conn)
		}
	}
}

// serve runs one inbound session: handshake, then apply every frame
// and acknowledge it. A box that holds the VIP refuses the stream.
//
// The dialler's hello proves nothing by itself: a copy captured on the
// wire passes the MAC at any time later (its send stamp is not checked:
// the two boxes' clocks need not agree). What proves the dialler holds the
// cluster key is its first frame after the handshake, MAC'd under the
// session key derived from our fresh nonce. Until that frame has arrived,
// the session in place (if any) is left alone, and the connection holds
// the one unproven slot (admit).
func (r *Replica) serve(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	defer r.handshakeDone(conn)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	from := conn.RemoteAddr().String()
	f := newFramer(conn, r.opt.Key, r.opt.now)
	conn.SetDeadline(time.Now().Add(hsTimeout))
	fr, err := f.read(maxHelloBody)
	if err == nil && fr.typ != frameHello {
		err = fmt.Errorf("%w: type %d before hello", errBadFrame, fr.typ)
	}
	var peer hello
	if err == nil {
		peer, err = decodeHello(fr.body)
	}
	if err != nil {
		r.st.reject(err)
		r.st.connectErrors.Add(1)
		r.log.Warn("replication: connection refused", "from", from, "err", err)
		return
	}
	// The lag of a frame is its transit beyond the hello's, which holds
	// the two clocks' offset: the clocks need not agree.
	base := r.opt.now().Sub(fr.sent)
	var mine hello
	mine.node = r.opt.Node
	mine.echo = peer.nonce
	mine.refuse = r.active.Load()
	mine.tagged = !r.opt.previous
	rand.Read(mine.nonce[:])
	f.write(frameHello, mine.encode())
	if err := f.flush(); err != nil || mine.refuse {
		if mine.refuse {
			r.st.refused.Add(1)
			r.log.Warn("replication: the peer streams while this box holds the VIP; refused", "from", from, "node", peer.node)
		}
		return
	}
	toStandby, toActive := sessionKeys(r.opt.Key, peer.nonce, mine.nonce)
	f.session(toActive, toStandby)

	// The active box sends the Core pool at once: wait for it (any frame
	// will do) before this connection replaces the current session.
	conn.SetReadDeadline(time.Now().Add(3 * r.opt.KeepAlive))
	if fr, err = f.read(maxBody); err != nil {
		r.st.reject(err)
		r.st.connectErrors.Add(1)
		r.log.Warn("replication: connection dropped before it proved the session key", "from", from, "node", peer.node, "err", err)
		return
	}
	done := make(chan struct{})
	defer close(done)
	if !r.adopt(conn, done) {
		return
	}
	defer func() {
		r.inMu.Lock()
		if r.inConn == conn {
			r.inConn, r.inDone = nil, nil
			r.st.connected.Store(false)
		}
		r.inMu.Unlock()
	}()
	r.st.peerNode.Store(&peer.node)
	r.st.since.Store(time.Now().UnixNano())
	r.st.sessions.Add(1)
	r.st.connected.Store(true)
	r.log.Info("replication: mirroring the peer", "from", from, "node", peer.node)

	var snap []balancer.DialogRecord
	var ack [16]byte
	for {
		now := time.Now()
		r.st.lastFrame.Store(now.UnixNano())
		lag := r.opt.now().Sub(fr.sent) - base
		if lag < 0 { // the hello was the slower one
			base, lag = base+lag, 0
		}
		r.st.arrivalLag.Store(int64(lag))
		if err := r.apply(fr, &snap); err != nil {
			r.st.reject(err)
			r.log.Warn("replication: bad frame; session dropped", "from", from, "err", err)
			return
		}
		binary.BigEndian.PutUint64(ack[:], fr.seq)
		binary.BigEndian.PutUint64(ack[8:], uint64(fr.sent.UnixNano()))
		f.write(frameAck, ack[:])
		conn.SetWriteDeadline(time.Now().Add(3 * r.opt.KeepAlive))
		if err := f.flush(); err != nil {
			return
		}
		conn.SetReadDeadline(time.Now().Add(3 * r.opt.KeepAlive))
		if fr, err = f.read(maxBody); err != nil {
			r.st.reject(err)
			if ctx.Err() == nil && !r.active.Load() {
				r.log.Warn("replication: session from the peer ended", "from", from, "err", err)
			}
			return
		}
	}
}

// adopt makes conn, which has proven the session key, the inbound
// session, unless this box has turned active or a newer connection has
// replaced conn in the unproven slot meanwhile (conn is closed then). The
// session it replaces is closed, and adopt waits until that session's
// handler has returned (done closed), so no frame of the old session is
// applied after one of the new.
func (r *Replica) adopt(conn net.Conn, done chan struct{}) bool {
	r.inMu.Lock()
	if r.hsConn != conn || r.active.Load() {
		r.inMu.Unlock()
		return false
	}
	r.hsConn = nil
	old, oldDone := r.inConn, r.inDone
	r.inConn, r.inDone = conn, done
	r.inMu.Unlock()
	if old != nil {
		old.Close()
		<-oldDone
	}
	return true
}

// apply applies one frame of the inbound session to the balancer;
// snapshot records are gathered in *snap until the snapshot ends.
func (r *Replica) apply(fr frame, snap *[]balancer.DialogRecord) error {
	var err error
	tagged := fr.typ == frameEventsTagged || fr.typ == frameSnapshotTagged
	if tagged && r.opt.previous {
		return fmt.Errorf("%w: type %d from the active box", errBadFrame, fr.typ)
	}
	switch fr.typ {
	case frameEvents, frameEventsTagged:
		n := 0
		err = decodeRecords(fr.body, tagged, func(rec record) {
			n++
			if !r.bal.ApplyDialog(rec.event()) {
				r.st.unknownCore.Add(1)
			}
		})
		r.st.eventsApplied.Add(uint64(n))
	case frameSnapshot, frameSnapshotTagged:
		err = decodeRecords(fr.body, tagged, func(rec record) { *snap = append(*snap, rec.dialog()) })
	case frameSnapEnd:
		if len(fr.body) != 4 || int(binary.BigEndian.Uint32(fr.body)) != len(*snap) {
			return fmt.Errorf("%w: snapshot of %d records ends with another count", errBadFrame, len(*snap))
		}
		if n := r.bal.ReplaceDialogs(*snap); n > 0 {
			r.st.unknownCore.Add(uint64(n))
		}
		r.st.snapshotsApplied.Add(1)
		r.log.Info("replication: snapshot applied", "dialogs", len(*snap))
		*snap = nil
	case frameCores:
		var cores []balancer.CoreRecord
		if err := json.Unmarshal(fr.body, &cores); err != nil {
			return fmt.Errorf("%w: cores: %v", errBadFrame, err)
		}
		if n, aerr := r.bal.ApplyCores(cores); aerr != nil {
			r.log.Warn("replication: Core pool not applied", "err", aerr)
		} else if n > 0 {
			r.st.coreUpdates.Add(1)
		}
	default:
		err = fmt.Errorf("%w: type %d from the active box", errBadFrame, fr.typ)
	}
	return err
}
