package replica

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/balancer"
	"github.com/sipedge/sipedge/hal/testenv"
)

// helloFrame is a dialler's hello MAC'd with k, as the peer (or a replay
// of it) sends it.
func helloFrame(k []byte) []byte {
	var out bytesWriter
	f := newFramer(&out, k, time.Now)
	var h hello
	h.node = "intruder"
	f.write(frameHello, h.encode())
	f.flush()
	return out.b
}

type bytesWriter struct{ b []byte }

func (w *bytesWriter) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }
func (w *bytesWriter) Read([]byte) (int, error)    { return 0, io.EOF }

func dialFrom(t *testing.T, src, to string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 3 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", to)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// answer reads what the standby sends on c within d: its hello, or
// nothing before it closes the connection.
func answer(c net.Conn, d time.Duration) (n int, closed bool) {
	c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, headerLen)
	n, err := io.ReadFull(c, buf)
	return n, err != nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET))
}

// TestForeignSourceClosedUnread: a connection from an address other than
// the configured peer's, even with a valid hello (the key holder's, or a
// replay of it), is closed before anything is read: no hello back, no
// handshake. The previous code answered every source with its hello.
func TestForeignSourceClosedUnread(t *testing.T) {
	pb, pa := testenv.FreePort(t), testenv.FreePort(t)
	lb := fmt.Sprintf("127.0.0.1:%d", pb)
	B := start(t, "b", lb, fmt.Sprintf("127.0.0.2:%d", pa), key, false, nil)
	h := helloFrame([]byte(key))
	eventually(t, "B listening", 3*time.Second, func() bool {
		c, err := net.Dial("tcp", lb)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	const n = 200
	for i := 0; i < n; i++ {
		c := dialFrom(t, "127.0.0.1", lb)
		c.Write(h)
		if got, closed := answer(c, 3*time.Second); got != 0 || !closed {
			t.Fatalf("connection %d from a foreign address: %d bytes answered, closed %v", i, got, closed)
		}
		c.Close()
	}
	if st := B.r.Status(); st.Counters["rejected_source"] < n || st.Counters["connect_errors"] != 0 || st.Counters["rejected_bad_mac"] != 0 {
		t.Errorf("B counters %+v", st.Counters)
	}
	// The peer's address is answered.
	c := dialFrom(t, "127.0.0.2", lb)
	c.Write(h)
	if got, _ := answer(c, 3*time.Second); got != headerLen {
		t.Errorf("the peer's address got %d bytes of a hello, want its header", got)
	}
}

// TestOversizedHelloNotAllocated: a frame before the handshake that
// claims more than a hello's length closes the connection before
// anything is allocated for it. The previous code allocated the claimed
// length (up to 4 MiB) and waited 2 s for it.
func TestOversizedHelloNotAllocated(t *testing.T) {
	pb, pa := testenv.FreePort(t), testenv.FreePort(t)
	lb := fmt.Sprintf("127.0.0.1:%d", pb)
	B := start(t, "b", lb, fmt.Sprintf("127.0.0.1:%d", pa), key, false, nil)
	hdr := helloFrame([]byte(key))[:headerLen]
	hdr[24], hdr[25], hdr[26], hdr[27] = 0, 0x40, 0, 0 // 4 MiB
	eventually(t, "B listening", 3*time.Second, func() bool {
		c, err := net.Dial("tcp", lb)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	const n = 50
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < n; i++ {
		c := dialFrom(t, "127.0.0.1", lb)
		c.Write(hdr)
		if got, closed := answer(c, 10*time.Second); got != 0 || !closed {
			t.Fatalf("oversized hello %d: %d bytes answered, closed %v", i, got, closed)
		}
		c.Close()
	}
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d oversized hellos: %.1f KiB allocated in this process", n, float64(alloc)/1024)
	if alloc > 8<<20 {
		t.Errorf("%d oversized hellos allocated %d MiB (each claimed 4 MiB)", n, alloc>>20)
	}
	if st := B.r.Status(); st.Counters["rejected_oversize"] != n {
		t.Errorf("B counted %d oversized, want %d: %+v", st.Counters["rejected_oversize"], n, st.Counters)
	}
}

// TestOneUnprovenConnection: connections from the peer's address that
// send a hello and nothing more (replays) occupy one slot beside the live
// session: each newer one closes the one before, and the live session
// never notices. The previous code kept every one open for 3 x KeepAlive.
func TestOneUnprovenConnection(t *testing.T) {
	pa, pb := testenv.FreePort(t), testenv.FreePort(t)
	la, lb := fmt.Sprintf("127.0.0.1:%d", pa), fmt.Sprintf("127.0.0.1:%d", pb)
	rb, err := New(Options{Node: "b", Listen: lb, Peer: la, Key: []byte(key), KeepAlive: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	B := run(t, rb, false, nil)
	A := start(t, "a", la, lb, key, true, nil)
	eventually(t, "session", 3*time.Second, func() bool { return B.r.Status().Connected })
	h := helloFrame([]byte(key))
	const n = 20
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = dialFrom(t, "127.0.0.1", lb)
		conns[i].Write(h)
		if got, _ := answer(conns[i], 3*time.Second); got != headerLen {
			t.Fatalf("replay %d: no hello back", i)
		}
	}
	var closed atomic.Int32
	for _, c := range conns[:n-1] {
		go func(c net.Conn) {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.Copy(io.Discard, c); err == nil || errors.Is(err, syscall.ECONNRESET) {
				closed.Add(1)
			}
		}(c)
	}
	eventually(t, "older unproven connections closed", 10*time.Second, func() bool { return closed.Load() == n-1 })
	if _, shut := answer(conns[n-1], 200*time.Millisecond); shut {
		t.Error("the newest unproven connection was closed too")
	}
	src := source{A.b, A.r}
	for i := 0; i < 10; i++ {
		src.change(balancer.DialogEvent{Kind: balancer.DialogCreate, CallID: fmt.Sprintf("after-%d", i), Core: cores[0].Name, At: time.Now()})
	}
	eventually(t, "events still mirrored", 3*time.Second, func() bool { return B.b.Dialogs() == 10 })
	if st := B.r.Status(); !st.Connected || st.Counters["sessions"] != 1 || st.Counters["superseded"] != n-1 {
		t.Errorf("B %+v", st)
	}
}
