package replica

import (
	"errors"
	"sync/atomic"
	"time"
)

// stats are the channel's counters and gauges, read by Status and the
// metrics collector.
type stats struct {
	connected atomic.Bool
	peerNode  atomic.Pointer[string]
	since     atomic.Int64 // unix ns the session began

	sessions      atomic.Uint64 // sessions established (either side)
	connectErrors atomic.Uint64 // dials or handshakes that failed
	refused       atomic.Uint64 // the peer was active too (it refused us, or we it)

	// active side
	eventsSent    atomic.Uint64
	framesSent    atomic.Uint64
	bytesSent     atomic.Uint64
	snapshotsSent atomic.Uint64
	resyncs       atomic.Uint64 // sessions dropped because MaxPending was exceeded
	sentSeq       atomic.Uint64 // last sequence sent
	ackedSeq      atomic.Uint64 // last sequence the peer acknowledged
	ackLag        atomic.Int64  // ns from sending the last acknowledged frame to its ack

	// standby side
	eventsApplied    atomic.Uint64
	snapshotsApplied atomic.Uint64
	coreUpdates      atomic.Uint64
	unknownCore      atomic.Uint64 // events or records naming a Core we lack
	lastFrame        atomic.Int64  // unix ns the last frame arrived
	arrivalLag       atomic.Int64  // ns the last frame took beyond the hello's transit

	badMAC    atomic.Uint64
	badSeq    atomic.Uint64
	malformed atomic.Uint64
	oversize  atomic.Uint64 // frames longer than allowed where they came (before any allocation)

	// the door (gate.go)
	rejectedSource atomic.Uint64 // connections from an address other than the peer's
	superseded     atomic.Uint64 // unproven connections replaced by a newer one
}

func (s *stats) reject(err error) {
	switch {
	case errors.Is(err, errBadMAC):
		s.badMAC.Add(1)
	case errors.Is(err, errBadSeq):
		s.badSeq.Add(1)
	case errors.Is(err, errTooLong):
		s.oversize.Add(1)
	case errors.Is(err, errBadFrame):
		s.malformed.Add(1)
	}
}

// Status is the replication state as `ctl replica`, `ctl status` and the
// web page show it.
type Status struct {
	Role      string     `json:"role"` // active (streams) | standby (mirrors)
	Listen    string     `json:"listen"`
	Peer      string     `json:"peer"`
	Connected bool       `json:"connected"`
	PeerNode  string     `json:"peer_node,omitempty"`
	Since     *time.Time `json:"since,omitempty"`
	// LagMS: on the active box, from sending the last acknowledged frame
	// to its acknowledgement (the peer applied it); on the standby, how
	// much longer than the session's hello the last frame took to arrive
	// (the two clocks need not agree).
	LagMS float64 `json:"lag_ms"`
	// Pending: events gathered and not yet sent; Unacked: frames sent and
	// not yet acknowledged (active box).
	Pending int    `json:"events_pending"`
	Unacked uint64 `json:"frames_unacked"`
	// Dialogs is the size of this box's dialog table: on the standby,
	// the dialogs mirrored from the peer.
	Dialogs int `json:"dialogs"`
	// LastFrameAgo: on the standby, since the last frame arrived.
	LastFrameAgo *Duration         `json:"last_frame_ago,omitempty"`
	Counters     map[string]uint64 `json:"counters"`
}

// Duration renders as a Go duration string in JSON.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// Status returns the channel's state now.
func (r *Replica) Status() Status {
	s := &r.st
	st := Status{Role: roleName(r.active.Load()), Listen: r.opt.Listen, Peer: r.opt.Peer, Connected: s.connected.Load()}
	if p := s.peerNode.Load(); p != nil && st.Connected {
		st.PeerNode = *p
	}
	if n := s.since.Load(); n != 0 && st.Connected {
		t := time.Unix(0, n).UTC()
		st.Since = &t
	}
	if r.bal != nil {
		st.Dialogs = r.bal.Dialogs()
	}
	if r.active.Load() {
		st.LagMS = float64(s.ackLag.Load()) / 1e6
		r.mu.Lock()
		st.Pending = len(r.pending)
		r.mu.Unlock()
		if sent, acked := s.sentSeq.Load(), s.ackedSeq.Load(); st.Connected && sent > acked {
			st.Unacked = sent - acked
		}
	} else {
		st.LagMS = float64(s.arrivalLag.Load()) / 1e6
		if n := s.lastFrame.Load(); n != 0 && st.Connected {
			d := Duration(time.Since(time.Unix(0, n)).Round(time.Millisecond))
			st.LastFrameAgo = &d
		}
	}
	st.Counters = map[string]uint64{
		"sessions": s.sessions.Load(), "connect_errors": s.connectErrors.Load(), "refused": s.refused.Load(),
		"events_sent": s.eventsSent.Load(), "frames_sent": s.framesSent.Load(), "bytes_sent": s.bytesSent.Load(),
		"snapshots_sent": s.snapshotsSent.Load(), "resyncs": s.resyncs.Load(),
		"events_applied": s.eventsApplied.Load(), "snapshots_applied": s.snapshotsApplied.Load(),
		"core_updates": s.coreUpdates.Load(), "unknown_core": s.unknownCore.Load(),
		"rejected_bad_mac": s.badMAC.Load(), "rejected_sequence": s.badSeq.Load(), "rejected_malformed": s.malformed.Load(),
		"rejected_oversize": s.oversize.Load(), "rejected_source": s.rejectedSource.Load(), "superseded": s.superseded.Load(),
	}
	return st
}

func (d Duration) String() string { return time.Duration(d).String() }
