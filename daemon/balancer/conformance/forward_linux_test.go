package conformance

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"testing"
)

// What a forwarded request must keep (RFC 3261 16.6): its Request-Line
// (a balancer never rewrites the Request-URI, loose routing included),
// its body byte for byte (a multipart body, binary parts and all; none
// of the octets after Content-Length), and Max-Forwards one less (70
// added when it had none).

var (
	contentLength = regexp.MustCompile(`(?im)^(?:content-length|l)[ \t]*:[ \t]*(\d+)`)
	maxForwards   = regexp.MustCompile(`(?im)^max-forwards[ \t]*:[ \t]*(\d+)`)
)

// body is the message's body as its Content-Length delimits it.
func body(msg []byte) []byte {
	head, rest, ok := bytes.Cut(msg, []byte("\r\n\r\n"))
	if !ok {
		return nil
	}
	if m := contentLength.FindSubmatch(head); m != nil {
		if n, err := strconv.Atoi(string(m[1])); err == nil && n <= len(rest) {
			return rest[:n]
		}
	}
	return rest
}

// forwardProblem compares the first forward of the request's own method
// with what was sent ("" when it kept what it must).
func forwardProblem(sent []byte, ob observation) string {
	line, _, _ := bytes.Cut(sent, []byte("\r\n"))
	method, _, _ := bytes.Cut(line, []byte(" "))
	for _, f := range ob.forwards {
		if !bytes.HasPrefix(f.data, append(method, ' ')) {
			continue
		}
		if got, _, _ := bytes.Cut(f.data, []byte("\r\n")); !bytes.Equal(got, line) {
			return fmt.Sprintf("forwarded Request-Line %q, sent %q", got, line)
		}
		if got, want := body(f.data), body(sent); !bytes.Equal(got, want) {
			return fmt.Sprintf("forwarded body of %d bytes differs from the %d sent", len(got), len(want))
		}
		head, _, _ := bytes.Cut(sent, []byte("\r\n\r\n"))
		want := 70
		if m := maxForwards.FindSubmatch(head); m != nil {
			n, _ := strconv.Atoi(string(m[1]))
			want = n - 1
		}
		fhead, _, _ := bytes.Cut(f.data, []byte("\r\n\r\n"))
		m := maxForwards.FindAllSubmatch(fhead, -1)
		if len(m) != 1 {
			return fmt.Sprintf("forwarded with %d Max-Forwards, want one", len(m))
		}
		if got, _ := strconv.Atoi(string(m[0][1])); got != want {
			return fmt.Sprintf("forwarded Max-Forwards %d, want %d", got, want)
		}
		return ""
	}
	return ""
}

func TestForwardProblem(t *testing.T) {
	sent := []byte("MESSAGE sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx\r\nMax-Forwards: 5\r\nl: 3\r\n\r\nabcINVITE trailing")
	fwd := func(mf, body string) observation {
		return observation{forwards: []datagram{{data: []byte("MESSAGE sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKy\r\n" +
			"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx\r\nMax-Forwards: " + mf + "\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)}}}
	}
	for i, c := range []struct {
		ob   observation
		want bool // a problem
	}{
		{fwd("4", "abc"), false},
		{fwd("5", "abc"), true},       // not decremented
		{fwd("4", "abd"), true},       // body changed
		{fwd("4", "abcINVITE"), true}, // octets past Content-Length forwarded
		{observation{}, false},        // nothing forwarded: not this check's business
	} {
		if got := forwardProblem(sent, c.ob); (got != "") != c.want {
			t.Errorf("case %d: forwardProblem = %q, want a problem: %v", i, got, c.want)
		}
	}
}
