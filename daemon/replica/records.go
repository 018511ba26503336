package replica

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/sipedge/sipedge/daemon/balancer"
)

// Longest tag and next hop a tagged record carries. A longer one is sent
// empty (a cut identity would name another dialog) and refused on
// decode.
const (
	maxTagLen = 255
	maxHopLen = 1024
)

// record is one dialog event or snapshot record on the wire.
type record struct {
	kind        balancer.DialogEventKind
	callID      string
	core        string
	at, expires time.Time
	session     time.Duration

	// tagged records only
	callerTag, calleeTag, nextHop string
}

func eventRecord(e *balancer.DialogEvent) record {
	return record{kind: e.Kind, callID: e.CallID, core: e.Core, at: e.At, expires: e.Expires,
		callerTag: e.CallerTag, calleeTag: e.CalleeTag, nextHop: e.NextHop}
}

func (r record) event() balancer.DialogEvent {
	return balancer.DialogEvent{Kind: r.kind, CallID: r.callID, Core: r.core, At: r.at, Expires: r.expires,
		CallerTag: r.callerTag, CalleeTag: r.calleeTag, NextHop: r.nextHop}
}

func snapshotRecord(d *balancer.DialogRecord) record {
	k := balancer.DialogCreate
	if d.Confirmed {
		k = balancer.DialogConfirm
	}
	return record{kind: k, callID: d.CallID, core: d.Core, at: d.Created, expires: d.Expires, session: d.Session,
		callerTag: d.CallerTag, calleeTag: d.CalleeTag, nextHop: d.NextHop}
}

func (r record) dialog() balancer.DialogRecord {
	return balancer.DialogRecord{CallID: r.callID, Core: r.core, Confirmed: r.kind == balancer.DialogConfirm,
		Created: r.at, Expires: r.expires, Session: r.session, CallerTag: r.callerTag, CalleeTag: r.calleeTag, NextHop: r.nextHop}
}

// Dialog records and events share one binary encoding:
//
//	kind (1), Call-ID length (2), Call-ID, Core length (1), Core,
//	at/created unix ns (8), expires unix ns (8), session seconds (4)
//
// and, in the tagged frame types only:
//
//	caller tag length (1), caller tag, callee tag length (1), callee tag,
//	next hop length (2), next hop
func (r *record) append(b []byte, tagged bool) []byte {
	callID, core := r.callID, r.core
	if len(callID) > 0xffff {
		callID = callID[:0xffff]
	}
	if len(core) > 0xff {
		core = core[:0xff]
	}
	b = append(b, byte(r.kind))
	b = binary.BigEndian.AppendUint16(b, uint16(len(callID)))
	b = append(b, callID...)
	b = append(b, byte(len(core)))
	b = append(b, core...)
	b = binary.BigEndian.AppendUint64(b, uint64(unixNano(r.at)))
	b = binary.BigEndian.AppendUint64(b, uint64(unixNano(r.expires)))
	b = binary.BigEndian.AppendUint32(b, uint32(r.session/time.Second))
	if !tagged {
		return b
	}
	b = appendTag(b, r.callerTag)
	b = appendTag(b, r.calleeTag)
	hop := r.nextHop
	if len(hop) > maxHopLen {
		hop = ""
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(hop)))
	return append(b, hop...)
}

func appendTag(b []byte, tag string) []byte {
	if len(tag) > maxTagLen {
		tag = ""
	}
	b = append(b, byte(len(tag)))
	return append(b, tag...)
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// frameBytes: a records frame is closed once its body reaches this size
// (or maxEvents records), so that long Call-IDs, tags or next hops never
// make a body over maxBody (one record is at most about 67 KB).
const frameBytes = 1 << 20

// encodeFrames encodes items, each made a record by rec, into frame
// bodies (a count, 4 bytes, then the records) and passes each to emit.
func encodeFrames[T any](items []T, tagged bool, rec func(*T) record, emit func([]byte) error) error {
	per := 64 // a typical record; tags and a next hop double it
	if tagged {
		per = 128
	}
	for len(items) > 0 {
		b := make([]byte, 4, 4+per*min(len(items), maxEvents))
		n := 0
		for ; n < len(items) && n < maxEvents && len(b) < frameBytes; n++ {
			r := rec(&items[n])
			b = r.append(b, tagged)
		}
		binary.BigEndian.PutUint32(b, uint32(n))
		if err := emit(b); err != nil {
			return err
		}
		items = items[n:]
	}
	return nil
}

// recordReader takes fields off a frame body, each bounded by what is
// left of it.
type recordReader struct {
	b   []byte
	bad bool
}

func (rd *recordReader) bytes(n int) []byte {
	if rd.bad || len(rd.b) < n {
		rd.bad = true
		return nil
	}
	v := rd.b[:n]
	rd.b = rd.b[n:]
	return v
}

func (rd *recordReader) u8() int {
	if v := rd.bytes(1); v != nil {
		return int(v[0])
	}
	return 0
}

func (rd *recordReader) u16() int {
	if v := rd.bytes(2); v != nil {
		return int(binary.BigEndian.Uint16(v))
	}
	return 0
}

func (rd *recordReader) u64() uint64 {
	if v := rd.bytes(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// decodeRecords parses a frame body: a count (4 bytes) then the records,
// tagged or not as the frame type says. Nothing is passed to fn from a
// record that is malformed; the records before it are.
func decodeRecords(b []byte, tagged bool, fn func(record)) error {
	if len(b) < 4 {
		return fmt.Errorf("%w: no record count", errBadFrame)
	}
	n := binary.BigEndian.Uint32(b)
	rd := recordReader{b: b[4:]}
	for i := uint32(0); i < n; i++ {
		var r record
		r.kind = balancer.DialogEventKind(rd.u8())
		r.callID = string(rd.bytes(rd.u16()))
		r.core = string(rd.bytes(rd.u8()))
		r.at = fromNano(int64(rd.u64()))
		r.expires = fromNano(int64(rd.u64()))
		if v := rd.bytes(4); v != nil {
			r.session = time.Duration(binary.BigEndian.Uint32(v)) * time.Second
		}
		if tagged {
			r.callerTag = string(rd.bytes(rd.u8()))
			r.calleeTag = string(rd.bytes(rd.u8()))
			l := rd.u16()
			if l > maxHopLen {
				return fmt.Errorf("%w: record %d: next hop of %d bytes", errBadFrame, i, l)
			}
			r.nextHop = string(rd.bytes(l))
		}
		if rd.bad {
			return fmt.Errorf("%w: record %d truncated", errBadFrame, i)
		}
		if r.kind < balancer.DialogCreate || r.kind > balancer.DialogEnd || r.callID == "" {
			return fmt.Errorf("%w: record %d: kind %d", errBadFrame, i, r.kind)
		}
		fn(r)
	}
	if len(rd.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errBadFrame, len(rd.b))
	}
	return nil
}
