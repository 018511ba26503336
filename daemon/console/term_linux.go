package console

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// termState is a terminal's saved mode.
type termState struct{ t unix.Termios }

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// makeRawish turns off line editing, echo and signal keys (^C, ^Z, ^\)
// on f, keeping CR->NL on input and NL->CRNL on output; it returns the
// mode to restore.
func makeRawish(f *os.File) (*termState, error) {
	fd := int(f.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	old := *t
	t.Lflag &^= unix.ICANON | unix.ECHO | unix.ECHONL | unix.ISIG | unix.IEXTEN
	t.Iflag |= unix.ICRNL
	t.Iflag &^= unix.IXON
	t.Oflag |= unix.OPOST | unix.ONLCR
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return nil, err
	}
	return &termState{old}, nil
}

func restoreTerm(f *os.File, s *termState) error {
	if s == nil {
		return nil
	}
	return unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, &s.t)
}

// setCooked turns line editing, echo and signal keys back on (for a
// shell started from the menu).
func setCooked(f *os.File) error {
	fd := int(f.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Lflag |= unix.ICANON | unix.ECHO | unix.ISIG | unix.IEXTEN
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}

var bauds = map[int]uint32{
	1200: unix.B1200, 2400: unix.B2400, 4800: unix.B4800, 9600: unix.B9600,
	19200: unix.B19200, 38400: unix.B38400, 57600: unix.B57600,
	115200: unix.B115200, 230400: unix.B230400, 460800: unix.B460800,
	921600: unix.B921600,
}

// setLine sets a serial line to baud (0: keep its speed), 8 data bits,
// no parity, one stop bit, receiver on, modem control lines ignored.
func setLine(f *os.File, baud int) error {
	fd := int(f.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("not a terminal: %w", err)
	}
	if baud != 0 {
		b, ok := bauds[baud]
		if !ok {
			return fmt.Errorf("unsupported baud rate %d", baud)
		}
		t.Cflag &^= unix.CBAUD
		t.Cflag |= b
		t.Ispeed, t.Ospeed = b, b
	}
	t.Cflag &^= unix.CSIZE | unix.PARENB | unix.CSTOPB | unix.CRTSCTS
	t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}
