package initd

import (
	"time"

	"github.com/sipedge/sipedge/hal"
)

// PetWatchdog opens the watchdog (which arms it), sets its timeout,
// feeds it once and closes it without the magic close: it stays armed.
// PID 1 does this as soon as the driver is loaded and again before each
// start of the daemon, so a firmware that hangs anywhere before the
// daemon's own watchdog policy runs is reset (and a trial rolled back).
func PetWatchdog(dev string, timeout time.Duration) error {
	w, err := hal.OpenWatchdog(dev, timeout)
	if err != nil {
		return err
	}
	kerr := w.Keepalive()
	if err := w.Abandon(); err != nil {
		return err
	}
	return kerr
}
