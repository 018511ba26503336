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
// device fails: this is what PID 1 calls for the profile's serial port.
// o.In, o.Out and o.TTY are set to the device; o.AllowExit is off.
func Serial(ctx context.Context, device string, o Options) {
	for ctx.Err() == nil {
		if err := serialOnce(ctx, device, o); err != nil && o.Logger != nil {
			o.Logger.Warn("console: serial session", "device", device, "err", err)
		}
		sleepCtx(ctx, time.Second)
	}
}

func serialOnce(ctx context.Context, device string, o Options) error {
	f, err := os.OpenFile(device, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("console: open %s: %w", device, err)
	}
	defer f.Close()
	o.In, o.Out, o.TTY, o.AllowExit = f, f, f, false
	return Run(ctx, o)
}
