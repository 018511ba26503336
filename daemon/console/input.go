package console

import (
	"bufio"
	"errors"
	"io"
	"unicode/utf8"
)

// ErrCancel is returned by a prompt the operator cancelled with ^C.
var ErrCancel = errors.New("cancelled")

// lineReader reads one line at a time from a raw-ish terminal (or a
// pipe), doing the little line editing a dumb terminal needs.
type lineReader struct {
	r      *bufio.Reader
	out    io.Writer
	echo   bool // the terminal does not echo: we do
	lastCR bool
}

// readLine reads a line. hidden suppresses the echo (passwords).
// ^C cancels (ErrCancel), backspace/DEL erases, ^U kills the line, ^Z
// and escape sequences (arrow keys) are ignored.
func (l *lineReader) readLine(hidden bool) (string, error) {
	var buf []rune
	for {
		c, _, err := l.r.ReadRune()
		if err != nil {
			if err == io.EOF && len(buf) > 0 {
				return string(buf), nil
			}
			return "", err
		}
		wasCR := l.lastCR
		l.lastCR = c == '\r'
		switch {
		case c == '\n' && wasCR:
			continue // CR LF from a terminal that sends both
		case c == '\r' || c == '\n':
			l.put("\n")
			return string(buf), nil
		case c == 0x03: // ^C
			l.put("^C\n")
			return "", ErrCancel
		case c == 0x04: // ^D on an empty line: cancel too
			if len(buf) == 0 {
				l.put("\n")
				return "", ErrCancel
			}
		case c == 0x7f || c == 0x08:
			if len(buf) > 0 {
				buf = buf[:len(buf)-1]
				if !hidden {
					l.put("\b \b")
				}
			}
		case c == 0x15: // ^U
			if !hidden {
				for range buf {
					l.put("\b \b")
				}
			}
			buf = buf[:0]
		case c == 0x1b: // ESC [ ... final byte
			if n, _ := l.r.Peek(1); len(n) == 1 && (n[0] == '[' || n[0] == 'O') {
				l.r.ReadByte()
				for {
					b, err := l.r.ReadByte()
					if err != nil || (b >= 0x40 && b <= 0x7e) {
						break
					}
				}
			}
		case c < 0x20 || c == utf8.RuneError:
			// other control keys (^Z among them) are ignored
		default:
			if len(buf) < 1024 {
				buf = append(buf, c)
				if !hidden {
					l.put(string(c))
				}
			}
		}
	}
}

func (l *lineReader) put(s string) {
	if l.echo {
		io.WriteString(l.out, s)
	}
}
