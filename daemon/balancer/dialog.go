package balancer

import (
	"net/netip"
	"time"
)

// dialog is one call in the dialog table, keyed by Call-ID.
type dialog struct {
	core      *Core
	confirmed bool
	created   time.Time
	expires   time.Time // confirmed: end unless refreshed; early: safety bound
	session   time.Duration

	// Identity and the caller's next hop (relay.go): the From tag of the
	// INVITE, the To tag of its 2xx, and where the caller's in-dialog
	// requests go (the first Record-Route beyond ours, else the remote
	// target), as a URI and as an address (invalid: the Core, for a
	// host name or an early dialog).
	callerTag string
	calleeTag string
	hop       dialogTarget
}

// dialogTarget is where a confirmed dialog's caller-side requests go,
// as learned from the 2xx that confirmed it (or refreshed it).
type dialogTarget struct {
	calleeTag string
	nextHop   string         // URI, at most maxNextHop bytes ("" when longer)
	tp        string         // "udp" | "tcp"
	addr      netip.AddrPort // invalid: the dialog's Core
	routed    bool           // from a Record-Route (fixed for the dialog), not a Contact
}

// dialogTable counts calls per Core from INVITE to BYE. Every change is
// one small event for the observer (hot standby streams them).
type dialogTable struct {
	m       *shardMap[string, *dialog]
	obs     DialogObserver
	timeout time.Duration // confirmed dialog without Session-Expires
	early   time.Duration // bound for an early dialog
	onIdle  func(*Core)   // a Core's load dropped to zero

	maxSession time.Duration // Session-Expires clamp (0: none)
}

func newDialogTable(obs DialogObserver, timeout, early time.Duration, onIdle func(*Core)) *dialogTable {
	return &dialogTable{m: newShardMap[*dialog](), obs: obs, timeout: timeout, early: early, onIdle: onIdle}
}

func (t *dialogTable) emit(e DialogEvent) {
	if t.obs != nil {
		t.obs.DialogEvent(e)
	}
}

// create records an INVITE forwarded to core (pending). Moving an early
// dialog to another Core (failover) is a new create.
func (t *dialogTable) create(callID, callerTag string, core *Core) {
	now := time.Now()
	var old *Core
	created := false
	t.m.update(callID, func(d *dialog, ok bool) (*dialog, bool) {
		if ok {
			if d.confirmed || d.core == core {
				return d, true
			}
			old = d.core
			d.core = core
			core.pending.Add(1)
			decr(&old.pending)
			created = true
			return d, true
		}
		core.pending.Add(1)
		created = true
		return &dialog{core: core, created: now, expires: now.Add(t.early), callerTag: callerTag}, true
	})
	if old != nil {
		t.idle(old)
	}
	if created {
		t.emit(DialogEvent{Kind: DialogCreate, CallID: callID, Core: core.name, At: now, CallerTag: callerTag})
	}
}

// confirm turns an early dialog into a call (INVITE 2xx). session is the
// negotiated Session-Expires, 0 when none; to is the callee's tag and
// the caller's next hop, from the 2xx.
func (t *dialogTable) confirm(callID string, session time.Duration, to dialogTarget) {
	now := time.Now()
	var ev DialogEvent // a value: a pointer set in the closure would be allocated
	t.m.update(callID, func(d *dialog, ok bool) (*dialog, bool) {
		if !ok || d.confirmed {
			return d, ok
		}
		d.confirmed = true
		d.session = t.clampSession(session)
		d.expires = now.Add(t.lifetime(d))
		d.calleeTag, d.hop = to.calleeTag, to
		decr(&d.core.pending)
		d.core.calls.Add(1)
		ev = d.event(DialogConfirm, callID, now)
		return d, true
	})
	if ev.Kind != 0 {
		t.emit(ev)
	}
}

// refresh is a target refresh (2xx to a re-INVITE or UPDATE from the
// caller's side): a next hop learned from a Contact follows the new
// one; a Record-Route is the dialog's for good. Emitted as a Confirm.
func (t *dialogTable) refresh(callID string, to dialogTarget) {
	now := time.Now()
	var ev DialogEvent
	t.m.update(callID, func(d *dialog, ok bool) (*dialog, bool) {
		if !ok || !d.confirmed || d.hop.routed || to.routed || to.nextHop == "" || to.nextHop == d.hop.nextHop {
			return d, ok
		}
		to.calleeTag = d.calleeTag
		d.hop = to
		ev = d.event(DialogConfirm, callID, now)
		return d, true
	})
	if ev.Kind != 0 {
		t.emit(ev)
	}
}

func (d *dialog) event(kind DialogEventKind, callID string, now time.Time) DialogEvent {
	return DialogEvent{Kind: kind, CallID: callID, Core: d.core.name, At: now, Expires: d.expires,
		CallerTag: d.callerTag, CalleeTag: d.calleeTag, NextHop: d.hop.nextHop}
}

// clampSession bounds a negotiated Session-Expires (the peer's or a
// caller's figure: a huge one would keep a dead dialog for ever).
func (t *dialogTable) clampSession(s time.Duration) time.Duration {
	if t.maxSession > 0 && s > t.maxSession {
		return t.maxSession
	}
	return s
}

func (t *dialogTable) lifetime(d *dialog) time.Duration {
	if d.session > 0 {
		return d.session + 32*time.Second
	}
	return t.timeout
}

// end removes a dialog (failure, cancel); idempotent.
func (t *dialogTable) end(callID, reason string) { t.endIf(callID, reason, nil, nil, false) }

// endBye removes the dialog a BYE names: Call-ID and both tags, either
// way round (a guessed Call-ID does not end somebody else's call).
func (t *dialogTable) endBye(callID string, fromTag, toTag []byte) {
	t.endIf(callID, "bye", fromTag, toTag, true)
}

func (t *dialogTable) endIf(callID, reason string, fromTag, toTag []byte, tags bool) {
	var d *dialog
	t.m.update(callID, func(v *dialog, ok bool) (*dialog, bool) {
		if !ok || tags && v.side(fromTag, toTag) == sideNone {
			return v, ok
		}
		d = v
		if v.confirmed {
			decr(&v.core.calls)
		} else {
			decr(&v.core.pending)
		}
		return v, false
	})
	if d != nil {
		t.emit(DialogEvent{Kind: DialogEnd, CallID: callID, Core: d.core.name, At: time.Now(), Reason: reason})
		t.idle(d.core)
	}
}

// touch extends a confirmed dialog on an in-dialog request that names
// it by Call-ID and tags.
func (t *dialogTable) touch(callID string, fromTag, toTag []byte) {
	t.m.update(callID, func(d *dialog, ok bool) (*dialog, bool) {
		if ok && d.confirmed && d.side(fromTag, toTag) != sideNone {
			d.expires = time.Now().Add(t.lifetime(d))
		}
		return d, ok
	})
}

func (t *dialogTable) idle(c *Core) {
	if t.onIdle != nil && c.load() == 0 {
		t.onIdle(c)
	}
}

// coreOf returns the Core of a dialog.
func (t *dialogTable) coreOf(callID string) *Core {
	d, ok := t.m.get(callID)
	if !ok {
		return nil
	}
	return d.core
}

// expire ends the dialogs whose time ran out; it returns how many.
func (t *dialogTable) expire(now time.Time) int {
	var gone []struct {
		id string
		d  *dialog
	}
	t.m.each(func(k string, d *dialog) bool {
		if now.Before(d.expires) {
			return true
		}
		if d.confirmed {
			decr(&d.core.calls)
		} else {
			decr(&d.core.pending)
		}
		gone = append(gone, struct {
			id string
			d  *dialog
		}{k, d})
		return false
	})
	for _, g := range gone {
		t.emit(DialogEvent{Kind: DialogEnd, CallID: g.id, Core: g.d.core.name, At: now, Reason: "expired"})
		t.idle(g.d.core)
	}
	return len(gone)
}
