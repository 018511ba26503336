package timesync

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// adjtimex modes (linux/timex.h) not all named by x/sys.
const (
	adjSetOffset        = 0x0100
	adjNano             = 0x2000
	adjOffsetSingleshot = 0x8001
)

// stepTimex is the adjtimex request that adds d to the clock at once.
func stepTimex(d time.Duration) unix.Timex {
	sec, nsec := int64(d/time.Second), int64(d%time.Second)
	if nsec < 0 { // the kernel wants 0 <= nsec < 1e9
		sec--
		nsec += int64(time.Second)
	}
	return unix.Timex{Modes: adjSetOffset | adjNano, Time: unix.Timeval{Sec: sec, Usec: nsec}}
}

// slewTimex is the adjtimex request that slews the clock by d (as
// adjtime(3): microseconds, replacing any slew still in progress).
func slewTimex(d time.Duration) unix.Timex {
	return unix.Timex{Modes: adjOffsetSingleshot, Offset: int64(d / time.Microsecond)}
}

// SystemClock is the kernel's wall clock (needs CAP_SYS_TIME to change).
type SystemClock struct{}

// Now implements Clock.
func (SystemClock) Now() time.Time { return time.Now() }

// Step implements Clock.
func (SystemClock) Step(d time.Duration) error {
	tx := stepTimex(d)
	if _, err := unix.Adjtimex(&tx); err != nil {
		return fmt.Errorf("timesync: step the clock by %v: %w", d, err)
	}
	return nil
}

// Slew implements Clock.
func (SystemClock) Slew(d time.Duration) error {
	tx := slewTimex(d)
	if _, err := unix.Adjtimex(&tx); err != nil {
		return fmt.Errorf("timesync: slew the clock by %v: %w", d, err)
	}
	return nil
}
