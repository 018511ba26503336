package failover

import "time"

// Clock tells the time. Tests inject a fake one and drive the Manager's
// step and receive methods themselves.
type Clock interface {
	Now() time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// Event is one state change of a VIP group, with its reason.
type Event struct {
	Time   time.Time
	Group  string
	From   State
	To     State
	Reason string
}

// Events receives every state change (the daemon writes them to its event
// log). Record must not block for long: it is called with the Manager's
// lock held.
type Events interface {
	Record(Event)
}
