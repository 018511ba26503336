package console

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestReadLine(t *testing.T) {
	for _, tc := range []struct {
		name, in, want, echo string
		hidden               bool
		err                  error
	}{
		{name: "CR", in: "abc\r", want: "abc", echo: "abc\n"},
		{name: "CRLF", in: "abc\r\nx", want: "abc", echo: "abc\n"},
		{name: "backspace", in: "abx\x7fc\r", want: "abc", echo: "abx\b \bc\n"},
		{name: "kill line", in: "xy\x15ab\n", want: "ab", echo: "xy\b \b\b \bab\n"},
		{name: "ctrl-c cancels", in: "ab\x03cd\r", err: ErrCancel, echo: "ab^C\n"},
		{name: "ctrl-z ignored", in: "a\x1ab\r", want: "ab", echo: "ab\n"},
		{name: "arrow keys ignored", in: "a\x1b[Ab\x1bOB\r", want: "ab", echo: "ab\n"},
		{name: "hidden", in: "secret\r", want: "secret", echo: "\n", hidden: true},
		{name: "utf-8", in: "café\r", want: "café", echo: "café\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			l := &lineReader{r: bufio.NewReader(strings.NewReader(tc.in)), out: &out, echo: true}
			got, err := l.readLine(tc.hidden)
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Errorf("readLine = %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
			if out.String() != tc.echo {
				t.Errorf("echo = %q, want %q", out.String(), tc.echo)
			}
		})
	}
}
