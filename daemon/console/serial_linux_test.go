package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/sipedge/sipedge/hal/testenv"
)

// stubClient answers the banner's calls; "config.show" can be made to
// panic once to check that Serial survives a broken session.
type stubClient struct {
	mu        sync.Mutex
	panicOnce bool
	calls     []string
}

func (s *stubClient) Call(_ context.Context, method string, _, result any) error {
	s.mu.Lock()
	s.calls = append(s.calls, method)
	p := s.panicOnce && method == "config.show"
	s.panicOnce = s.panicOnce && !p
	s.mu.Unlock()
	if p {
		panic("stub: broken menu path")
	}
	switch method {
	case "config.show":
		b, _ := json.Marshal(map[string]string{"yaml": "node: {name: box-s, profile: single}\nsip: {listen: [\"udp:127.0.0.1:5060\"]}\n"})
		return json.Unmarshal(b, result)
	case MethodSession: // no login: this test is about the line
		return nil
	}
	return errors.New("stub: no such method")
}

// TestSerialOnPTY runs Serial on a pseudo-terminal's device path, as PID 1
// runs it on /dev/ttyS0: the line gets the baud rate, signals are off,
// the banner shows, and a session that panics is started again.
func TestSerialOnPTY(t *testing.T) {
	ptm, pts, err := pty.Open()
	if err != nil {
		testenv.Missing(t, "no pty: %v", err)
	}
	defer ptm.Close()
	dev := pts.Name()
	defer pts.Close() // keep the slave open so the master sees no hangup
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	cl := &stubClient{panicOnce: true}
	go func() {
		defer close(done)
		Serial(ctx, dev, Options{Client: cl, Baud: 115200, Shell: "-", Hostname: func() (string, error) { return "box-s", nil }})
	}()
	defer func() { cancel(); ptm.Write([]byte("\r")); <-done }()

	var mu sync.Mutex
	var out bytes.Buffer
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := ptm.Read(b)
			mu.Lock()
			out.Write(b[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	wait := func(s string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			got := out.String()
			mu.Unlock()
			if strings.Contains(got, s) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %q on the serial line; got:\n%s", s, got)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The first session panicked in its banner; the second one runs.
	wait("node box-s")
	wait("0) Show the banner again")
	tio, err := unix.IoctlGetTermios(int(pts.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if tio.Cflag&unix.CBAUD != unix.B115200 || tio.Cflag&unix.CLOCAL == 0 || tio.Lflag&unix.ISIG != 0 {
		t.Errorf("line not set up: cflag %#o lflag %#o", tio.Cflag, tio.Lflag)
	}
	ptm.Write([]byte("\x03\r")) // ^C is no signal: the prompt is redrawn
	wait("Enter an option: ")
	cl.mu.Lock()
	n := strings.Count(strings.Join(cl.calls, " "), "config.show")
	cl.mu.Unlock()
	if n < 2 {
		t.Errorf("config.show called %d times, want a restarted session", n)
	}
}
