package timesync

import (
	"testing"
	"time"
)

// The adjtimex requests are built without calling the kernel (a test
// never sets the machine's clock).
func TestTimexRequests(t *testing.T) {
	for _, c := range []struct {
		d         time.Duration
		sec, nsec int64
	}{
		{1500 * time.Millisecond, 1, 500_000_000},
		{-1500 * time.Millisecond, -2, 500_000_000},
		{-time.Hour, -3600, 0},
		{-1, -1, 999_999_999},
	} {
		tx := stepTimex(c.d)
		if tx.Modes != adjSetOffset|adjNano || tx.Time.Sec != c.sec || tx.Time.Usec != c.nsec {
			t.Errorf("step %v: modes %#x time %d.%09d", c.d, tx.Modes, tx.Time.Sec, tx.Time.Usec)
		}
	}
	if tx := slewTimex(-250 * time.Millisecond); tx.Modes != adjOffsetSingleshot || tx.Offset != -250_000 {
		t.Errorf("slew: %+v", tx)
	}
}
