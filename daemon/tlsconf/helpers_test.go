package tlsconf

import (
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// server is a TLS echo server on 127.0.0.1 that reports every
// handshake's outcome as the server saw it.
type server struct {
	addr    string
	results chan result
}

type result struct {
	state tls.ConnectionState
	err   error
}

func serve(t *testing.T, cfg *tls.Config) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{addr: ln.Addr().String(), results: make(chan result, 16)}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				tc := tls.Server(c, cfg)
				defer tc.Close()
				tc.SetDeadline(time.Now().Add(10 * time.Second))
				err := tc.Handshake()
				s.results <- result{tc.ConnectionState(), err}
				if err == nil {
					io.Copy(tc, tc)
				}
			}()
		}
	}()
	return s
}

// next is the outcome of the server's next handshake.
func (s *server) next(t *testing.T) result {
	t.Helper()
	select {
	case r := <-s.results:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("the server saw no handshake")
		return result{}
	}
}

// dial connects to s with cfg and completes the client's handshake.
func dial(t *testing.T, s *server, cfg *tls.Config) (*tls.Conn, error) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", s.addr, cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, nil
}

// echo sends msg over c and reads it back.
func echo(c *tls.Conn, msg string) error {
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return io.ErrUnexpectedEOF
	}
	return nil
}

// servedCert dials s without verifying (SNI sni; none when empty) and
// returns the serial number of the certificate the server presented.
func servedCert(t *testing.T, s *server, sni string) string {
	t.Helper()
	cfg := &tls.Config{InsecureSkipVerify: true, ServerName: sni}
	c, err := dial(t, s, cfg)
	if err != nil {
		t.Fatalf("dial with SNI %q: %v", sni, err)
	}
	if r := s.next(t); r.err != nil {
		t.Fatalf("server handshake with SNI %q: %v", sni, r.err)
	}
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// logBuffer is a logger whose output the test reads.
func logBuffer() (*slog.Logger, *syncBuffer) {
	b := &syncBuffer{}
	return slog.New(slog.NewTextHandler(b, nil)), b
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func removeFile(t *testing.T, p string) {
	t.Helper()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
}
