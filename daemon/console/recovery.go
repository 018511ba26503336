package console

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// RecoveryFile, in node.data_dir, asks the daemon to clear the console
// and web password at its next start. PID 1 writes it when the operator
// asks for it on the console port in the first seconds of boot: only
// someone at the box's console as it boots can (the menu's reboot needs
// a login).
const RecoveryFile = "console-password-reset"

// RecoveryKey is the key that asks for the recovery.
const RecoveryKey = 'r'

// OfferRecovery writes the recovery offer on the console device and
// waits window for RecoveryKey (either case; other keys are ignored).
// It reports whether the key came.
func OfferRecovery(ctx context.Context, device string, baud int, window time.Duration) (bool, error) {
	f, err := os.OpenFile(device, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return false, fmt.Errorf("console: recovery: open %s: %w", device, err)
	}
	defer f.Close()
	if err := setLine(f, baud); err != nil {
		return false, fmt.Errorf("console: recovery: %s: %w", device, err)
	}
	st, err := makeRawish(f)
	if err != nil {
		return false, fmt.Errorf("console: recovery: %s: %w", device, err)
	}
	defer restoreTerm(f, st)
	unix.IoctlSetInt(int(f.Fd()), unix.TCFLSH, unix.TCIFLUSH) // keys typed before the offer do not count
	return offerRecovery(ctx, f, f, window, f.SetReadDeadline)
}

// offerRecovery is OfferRecovery on any reader with a read deadline.
func offerRecovery(ctx context.Context, in io.Reader, out io.Writer, window time.Duration, deadline func(time.Time) error) (bool, error) {
	fmt.Fprintf(out, "\r\nsipedge: forgotten console password? Press %c within %d seconds to clear it\r\n(the web page's password too; the console then asks for a new one).\r\n",
		RecoveryKey, int(window.Round(time.Second)/time.Second))
	end := time.Now().Add(window)
	if err := deadline(end); err != nil {
		return false, fmt.Errorf("console: recovery: %w", err)
	}
	r := bufio.NewReader(in)
	for ctx.Err() == nil {
		b, err := r.ReadByte()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			fmt.Fprintf(out, "sipedge: booting.\r\n")
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("console: recovery: %w", err)
		}
		if strings.EqualFold(string(b), string(RecoveryKey)) {
			fmt.Fprintf(out, "sipedge: the console and web password will be cleared; set a new one at the console.\r\n")
			return true, nil
		}
	}
	return false, ctx.Err()
}
