package console

import (
	"bufio"
	"fmt"
	"io"
	"os"
)

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool { return isTerminal(f) }

// ReadPassword prompts on out and reads one line from the terminal f
// without echo (^C cancels with ErrCancel).
func ReadPassword(f *os.File, out io.Writer, prompt string) (string, error) {
	st, err := makeRawish(f)
	if err != nil {
		return "", err
	}
	defer restoreTerm(f, st)
	fmt.Fprint(out, prompt)
	l := &lineReader{r: bufio.NewReaderSize(f, 16), out: out, echo: true}
	s, err := l.readLine(true)
	return s, err
}
