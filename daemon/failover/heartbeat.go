package failover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"
)

// The heartbeat paths. Sending: one message for every group, at the
// interval and at once on a state change. Receiving: a datagram from the
// heartbeat socket is checked (source, form, MAC, session) before the
// Manager's lock is taken, and a rejection is counted and logged after
// it is released.

// setPeers records the peers' addresses: only datagrams from their IP
// addresses (any port) are read. It must be called before start.
func (m *Manager) setPeers(peers []netip.AddrPort) {
	m.sources = make(map[netip.Addr]bool, len(peers))
	for _, p := range peers {
		m.sources[p.Addr().Unmap()] = true
	}
}

// receiveFrom handles one datagram from the network. One whose source is
// not a peer's address is counted and dropped before anything else: no
// decoding, no MAC, no lock.
func (m *Manager) receiveFrom(b []byte, src netip.AddrPort, now time.Time) {
	if !m.sources[src.Addr().Unmap()] {
		m.reject(RejectUnknownSource, src.String(), errUnknownSource, now)
		return
	}
	m.receive(b, src.String(), now)
}

var errUnknownSource = errors.New("source address is not a configured peer")

// receive handles one datagram from a peer's address. It verifies the
// datagram before taking the lock, and logs rejections after releasing
// it, so junk (forged, or spoofing the peer's address) cannot hold up the
// event loop or the peer's real heartbeats.
func (m *Manager) receive(b []byte, from string, now time.Time) {
	msg, err := Decode(b, m.opt.Key)
	if err != nil {
		reason := RejectMalformed
		switch {
		case errors.Is(err, ErrBadMAC):
			reason = RejectBadMAC
		case errors.Is(err, ErrVersion):
			reason = RejectVersion
		}
		m.reject(reason, from, err, now)
		return
	}
	if msg.Node == m.opt.Node {
		m.reject(RejectSelf, from, errors.New("heartbeat carries our own node id"), now)
		return
	}
	m.mu.Lock()
	wall := m.opt.WallClock.Now()
	if r := m.sess.check(msg, now, wall); r != "" {
		if r == RejectUnproven {
			m.challenge(now)
		}
		m.mu.Unlock()
		m.reject(r, from, fmt.Errorf("node %s boot %016x seq %d session %v time %s (skew %v)", msg.Node, msg.Boot, msg.Seq, msg.Session, msg.Time.Format(time.RFC3339Nano), wall.Sub(msg.Time)), now)
		return
	}
	defer m.mu.Unlock()
	m.met.received()
	m.pair.heard(msg, now, wall)
	for _, st := range msg.Groups {
		g := m.byName[st.Name]
		if g == nil {
			continue
		}
		p := g.peers[msg.Node]
		if p == nil {
			p = &peerGroup{node: msg.Node}
			g.peers[msg.Node] = p
			m.log.Info("peer heard", "group", g.opt.Name, "peer", msg.Node, "from", from, "state", st.State)
		}
		if p.boot != msg.Boot || now.Sub(p.heard) >= g.opt.Deadtime {
			p.betterSince = time.Time{} // restarted or back from silence
		}
		p.boot, p.heard, p.status = msg.Boot, now, st
		pc := peerCandidate(p)
		if pc.eligible() && st.State == StateBackup && preferred(pc, m.selfCandidate(g)) {
			if p.betterSince.IsZero() {
				p.betterSince = now
			}
		} else {
			p.betterSince = time.Time{}
		}
		m.evaluate(g, now)
	}
	m.flush(now)
}

// challenge answers an authentic heartbeat that does not echo our boot
// id with one of ours at once (it carries the challenge: our boot id,
// and echoes the sender's), at most four times an interval whatever
// arrives. The caller holds mu.
func (m *Manager) challenge(now time.Time) {
	if !m.started || m.stopping || (!m.lastChal.IsZero() && now.Sub(m.lastChal) < m.opt.Interval/4) {
		return
	}
	m.lastChal = now
	m.sendNow = max(m.sendNow, 1)
	m.flush(now)
}

// reject counts a rejected heartbeat and logs it, rate-limited per
// reason (RejectLogEvery). It must be called without m.mu held.
func (m *Manager) reject(reason, from string, err error, now time.Time) {
	m.met.rejected(reason)
	if logIt, suppressed := m.rejects.add(reason, now); logIt {
		lvl := slog.LevelWarn
		if reason == RejectUnproven {
			lvl = slog.LevelInfo // expected once after either box starts
		}
		m.log.Log(context.Background(), lvl, "heartbeat rejected", "reason", reason, "from", from, "err", err, "suppressed", suppressed)
	}
}

// flush sends the heartbeats that are due.
func (m *Manager) flush(now time.Time) {
	if !m.started {
		return
	}
	for m.sendNow > 0 || !now.Before(m.nextSend) {
		if m.sendNow > 0 {
			m.sendNow--
		}
		m.sendHeartbeat(now, 0)
		m.nextSend = now.Add(m.opt.Interval)
	}
}

func (m *Manager) message(now time.Time, flags uint8) *Message {
	m.nextSeq()
	msg := &Message{Node: m.opt.Node, Flags: flags, Boot: m.boot, Seq: m.seq,
		Time: m.sess.wireTime(now, m.opt.WallClock.Now()), Session: true, Echo: m.sess.echo()}
	for _, g := range m.groups {
		st := GroupStatus{Name: g.opt.Name, State: g.state, Priority: uint8(g.effectivePriority())}
		if g.opt.Role == RoleMain {
			st.Flags |= GroupMain
		}
		if g.held {
			st.Flags |= GroupHeld
		}
		if g.pinned {
			st.Flags |= GroupTakeover
		}
		if g.released > 0 {
			st.Flags |= GroupReleased
			g.released--
		}
		if m.stopping {
			st.State, st.Priority = StateStopped, 0
		}
		msg.Groups = append(msg.Groups, st)
	}
	msg.Summary = m.pair.outgoing(m, len(msg.Groups))
	return msg
}

func (m *Manager) sendHeartbeat(now time.Time, flags uint8) {
	if m.send == nil {
		return
	}
	b, err := Encode(m.message(now, flags), m.opt.Key)
	if err != nil {
		m.log.Error("encode heartbeat", "err", err)
		return
	}
	if err := m.send(b); err != nil {
		m.log.Debug("send heartbeat", "err", err)
		m.met.sendError()
		return
	}
	m.met.sent()
}
