package balancer

import (
	"time"
)

// dialog is one call in the dialog table, keyed by Call-ID.
type dialog struct {
	core      *Core
	confirmed bool
	created   time.Time
	expires   time.Time // confirmed: end unless refreshed; early: safety bound
	session   time.Duration
}

// dialogTable counts calls per Core from INVITE to BYE. Every change is
// one small event for the observer (hot standby streams them).
type dialogTable struct {
	m       *shardMap[string, *dialog]
	obs     DialogObserver
	timeout time.Duration // confirmed dialog without Session-Expires
	early   time.Duration // bound for an early dialog
	onIdle  func(*Core)   // a Core's load dropped to zero
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
func (t *dialogTable) create(callID string, core *Core) {
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
		return &dialog{core: core, created: now, expires: now.Add(t.early)}, true
	})
	if old != nil {
		t.idle(old)
	}
	if created {
		t.emit(DialogEvent{Kind: DialogCreate, CallID: callID, Core: core.name, At: now})
	}
}

// confirm turns an early dialog into a call (INVITE 2xx). session is the
// negotiated Session-Expires, 0 when none.
func (t *dialogTable) confirm(callID string, session time.Duration) {
	now := time.Now()
	var ev DialogEvent // a value: a pointer set in the closure would be allocated
	t.m.update(callID, func(d *dialog, ok bool) (*dialog, bool) {
		if !ok || d.confirmed {
			return d, ok
		}
		d.confirmed = true
		d.session = session
		d.expires = now.Add(t.lifetime(d))
		decr(&d.core.pending)
		d.core.calls.Add(1)
		ev = DialogEvent{Kind: DialogConfirm, CallID: callID, Core: d.core.name, At: now, Expires: d.expires}
		return d, true
	})
	if ev.Kind != 0 {
		t.emit(ev)
	}
}

func (t *dialogTable) lifetime(d *dialog) time.Duration {
	if d.session > 0 {
		return d.session + 32*time.Second
	}
	return t.timeout
}

// touch extends a confirmed dialog on an in-dialog request.
func (t *dialogTable) touch(callID string) {
	t.m.update(callID, func(d *dialog, ok bool) (*dialog, bool) {
		if ok && d.confirmed {
			d.expires = time.Now().Add(t.lifetime(d))
		}
		return d, ok
	})
}

// end removes a dialog (BYE, failure, cancel); idempotent.
func (t *dialogTable) end(callID, reason string) {
	var d *dialog
	t.m.update(callID, func(v *dialog, ok bool) (*dialog, bool) {
		d = v
		if !ok {
			return v, false
		}
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
