package balancer

import "time"

// Events receives the balancer's notable happenings: Core state changes
// with their reasons. The daemon adapts it to the store's event log.
type Events interface {
	Event(kind, core, reason string)
}

// Event kinds passed to Events.Event.
const (
	EventCoreUp       = "core-up"
	EventCoreDown     = "core-down"
	EventCoreTrying   = "core-trying"
	EventCoreDraining = "core-draining"
	EventCoreDrained  = "core-drained"
	EventCoreDisabled = "core-disabled"
	EventCoreEnabled  = "core-enabled"
	EventCoreAdded    = "core-added"
	EventCoreRemoved  = "core-removed"
)

// DialogEventKind is one change of the dialog table.
type DialogEventKind uint8

// Dialog table changes, in the order a call sees them.
const (
	DialogCreate  DialogEventKind = iota + 1 // INVITE forwarded to a Core
	DialogConfirm                            // 2xx received: the call is up
	DialogEnd                                // BYE, failure, CANCEL or expiry
)

func (k DialogEventKind) String() string {
	switch k {
	case DialogCreate:
		return "create"
	case DialogConfirm:
		return "confirm"
	case DialogEnd:
		return "end"
	}
	return "unknown"
}

// DialogEvent is one small change of the dialog table, small enough to be
// streamed to the peer box for hot standby.
type DialogEvent struct {
	Kind    DialogEventKind
	CallID  string
	Core    string
	At      time.Time
	Expires time.Time // for Confirm: when the dialog expires unless refreshed
	Reason  string    // for End: "bye", "failed", "cancelled", "expired"

	// The dialog's identity beyond its Call-ID and where the caller's
	// in-dialog requests may go (edge trust: a request from an untrusted
	// source is routed only along a dialog it names by Call-ID and both
	// tags, to the dialog's recorded next hop). Create carries CallerTag;
	// Confirm carries all three (a target refresh is a Confirm again).
	CallerTag string // From tag of the dialog-forming INVITE
	CalleeTag string // To tag of the 2xx that confirmed it
	NextHop   string // caller -> callee next hop: first Route beyond ours, else the remote target (Contact), as a URI
}

// DialogObserver is told every dialog table change. It is called on the
// message path: it must not block.
type DialogObserver interface {
	DialogEvent(DialogEvent)
}
