//go:build !linux

package timesync

import (
	"errors"
	"time"
)

// SystemClock is the wall clock; only Linux can set it here.
type SystemClock struct{}

// Now implements Clock.
func (SystemClock) Now() time.Time { return time.Now() }

// Step implements Clock.
func (SystemClock) Step(time.Duration) error {
	return errors.New("timesync: setting the clock needs Linux")
}

// Slew implements Clock.
func (SystemClock) Slew(time.Duration) error {
	return errors.New("timesync: setting the clock needs Linux")
}
