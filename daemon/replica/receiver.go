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
		go r.serve(ctx, conn)
	}
}

// serve runs one inbound session: handshake, then apply every frame
// and acknowledge it. A box that holds the VIP refuses the stream.
func (r *Replica) serve(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	from := conn.RemoteAddr().String()
	f := newFramer(conn, r.opt.Key)
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	fr, err := f.read()
	if err == nil && fr.typ != frameHello {
		err = fmt.Errorf("%w: type %d before hello", errBadFrame, fr.typ)
	}
	var peer hello
	if err == nil {
		peer, err = decodeHello(fr.body)
	}
	if err == nil {
		if d := time.Since(fr.sent); d > helloSkew || d < -helloSkew {
			err = fmt.Errorf("%w: hello stamped %v from our clock", errBadFrame, d.Round(time.Millisecond))
		}
	}
	if err != nil {
		r.st.reject(err)
		r.st.connectErrors.Add(1)
		r.log.Warn("replication: connection refused", "from", from, "err", err)
		return
	}
	var mine hello
	mine.node = r.opt.Node
	mine.echo = peer.nonce
	mine.refuse = r.active.Load()
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

	r.inMu.Lock()
	if r.active.Load() {
		r.inMu.Unlock()
		return
	}
	old := r.inConn
	r.inConn = conn
	r.inMu.Unlock()
	if old != nil {
		old.Close()
	}
	defer func() {
		r.inMu.Lock()
		if r.inConn == conn {
			r.inConn = nil
			r.st.connected.Store(false)
		}
		r.inMu.Unlock()
	}()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	r.st.peerNode.Store(&peer.node)
	r.st.since.Store(time.Now().UnixNano())
	r.st.sessions.Add(1)
	r.st.connected.Store(true)
	r.log.Info("replication: mirroring the peer", "from", from, "node", peer.node)

	var snap []balancer.DialogRecord
	var ack [16]byte
	for {
		conn.SetReadDeadline(time.Now().Add(3 * r.opt.KeepAlive))
		fr, err := f.read()
		if err != nil {
			r.st.reject(err)
			if ctx.Err() == nil && !r.active.Load() {
				r.log.Warn("replication: session from the peer ended", "from", from, "err", err)
			}
			return
		}
		now := time.Now()
		r.st.lastFrame.Store(now.UnixNano())
		r.st.arrivalLag.Store(int64(now.Sub(fr.sent)))
		switch fr.typ {
		case frameEvents:
			n := 0
			err = decodeRecords(fr.body, func(rec record) {
				n++
				if !r.bal.ApplyDialog(balancer.DialogEvent{Kind: rec.kind, CallID: rec.callID, Core: rec.core, At: rec.at, Expires: rec.expires}) {
					r.st.unknownCore.Add(1)
				}
			})
			r.st.eventsApplied.Add(uint64(n))
		case frameSnapshot:
			err = decodeRecords(fr.body, func(rec record) {
				snap = append(snap, balancer.DialogRecord{CallID: rec.callID, Core: rec.core, Confirmed: rec.kind == balancer.DialogConfirm,
					Created: rec.at, Expires: rec.expires, Session: rec.session})
			})
		case frameSnapEnd:
			if len(fr.body) != 4 || int(binary.BigEndian.Uint32(fr.body)) != len(snap) {
				err = fmt.Errorf("%w: snapshot of %d records ends with another count", errBadFrame, len(snap))
				break
			}
			if n := r.bal.ReplaceDialogs(snap); n > 0 {
				r.st.unknownCore.Add(uint64(n))
			}
			r.st.snapshotsApplied.Add(1)
			r.log.Info("replication: snapshot applied", "dialogs", len(snap))
			snap = nil
		case frameCores:
			var cores []balancer.CoreRecord
			if err = json.Unmarshal(fr.body, &cores); err != nil {
				err = fmt.Errorf("%w: cores: %v", errBadFrame, err)
				break
			}
			if n, aerr := r.bal.ApplyCores(cores); aerr != nil {
				r.log.Warn("replication: Core pool not applied", "err", aerr)
			} else if n > 0 {
				r.st.coreUpdates.Add(1)
			}
		default:
			err = fmt.Errorf("%w: type %d from the active box", errBadFrame, fr.typ)
		}
		if err != nil {
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
	}
}
