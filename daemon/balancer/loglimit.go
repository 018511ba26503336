package balancer

import (
	"sync"
	"time"
)

// everySecond lets one event a second through (a log line), counting
// those it holds back.
type everySecond struct {
	mu      sync.Mutex
	last    time.Time
	skipped int
}

// allow reports whether an event may go through now, and how many were
// held back since the last one that did.
func (e *everySecond) allow() (ok bool, skipped int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	if now.Sub(e.last) < time.Second {
		e.skipped++
		return false, 0
	}
	skipped = e.skipped
	e.last, e.skipped = now, 0
	return true, skipped
}
