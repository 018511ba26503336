package console

import (
	"context"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Serial runs the console on a serial device (e.g. /dev/ttyS0) for as
// long as ctx lives, starting it again whenever a session ends or the
// device fails: this is what PID 1 starts (through `sipedge console
// -serial`) on the board profile's serial port. o.In, o.Out and o.TTY
// are set to the device; o.AllowExit is off. The line is set to o.Baud
// (when not zero), 8N1, no modem control (CLOCAL), so that the open does
// not wait for a carrier that a console cable does not give.
func Serial(ctx context.Context, device string, o Options) {
	for ctx.Err() == nil {
		if err := serialOnce(ctx, device, o); err != nil && o.Logger != nil {
			o.Logger.Warn("console: serial session", "device", device, "err", err)
		}
		sleepCtx(ctx, time.Second)
	}
}

func serialOnce(ctx context.Context, device string, o Options) (err error) {
	// A bug in one menu path must not end the console for good: the
	// session restarts.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("console: panic: %v", p)
		}
	}()
	// O_NONBLOCK: do not wait for a carrier before CLOCAL is set.
	f, err := os.OpenFile(device, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("console: open %s: %w", device, err)
	}
	defer f.Close()
	if err := setLine(f, o.Baud); err != nil {
		return fmt.Errorf("console: %s: %w", device, err)
	}
	o.In, o.Out, o.TTY, o.AllowExit = f, f, f, false
	return Run(ctx, o)
}
