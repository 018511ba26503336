package resolve

import "time"

// Clock is the time a Watcher reads and waits on; tests inject a fake
// one to drive re-resolution without sleeping.
type Clock interface {
	Now() time.Time
	// After delivers once d has passed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
