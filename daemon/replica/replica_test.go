package replica

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/balancer"
	"github.com/sipedge/sipedge/hal/testenv"
)

var cores = []balancer.CoreConfig{{Name: "core1", Address: "198.51.100.21:5060"}, {Name: "core2", Address: "198.51.100.22:5060"}}

func newBalancer(t *testing.T, obs balancer.DialogObserver) *balancer.Balancer {
	t.Helper()
	b, err := balancer.New(balancer.Options{Listen: []string{"udp:192.0.2.10:5060"}, Cores: cores, Dialogs: obs})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// source drives an active balancer's table through ApplyDialog and
// forwards each change to the Replica as the balancer's own events would.
type source struct {
	*balancer.Balancer
	r *Replica
}

func (s source) change(e balancer.DialogEvent) {
	s.ApplyDialog(e)
	s.r.DialogEvent(e)
}

type node struct {
	r      *Replica
	b      *balancer.Balancer
	cancel context.CancelFunc
	done   chan struct{}
}

func start(t *testing.T, name, listen, peer, key string, active bool, b *balancer.Balancer) *node {
	t.Helper()
	r, err := New(Options{Node: name, Listen: listen, Peer: peer, Key: []byte(key), RetryInterval: 20 * time.Millisecond, KeepAlive: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return run(t, r, active, b)
}

func run(t *testing.T, r *Replica, active bool, b *balancer.Balancer) *node {
	t.Helper()
	if b == nil {
		b = newBalancer(t, nil)
	}
	r.Attach(b)
	r.SetActive(active)
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{r: r, b: b, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(n.done); r.Run(ctx) }()
	t.Cleanup(n.stop)
	return n
}

func (n *node) stop() {
	n.cancel()
	<-n.done
}

func perCore(b *balancer.Balancer) string {
	s := ""
	for _, c := range b.Cores() {
		s += fmt.Sprintf("%s=%d/%d/%s ", c.Name, c.Calls, c.Pending, c.State)
	}
	return fmt.Sprintf("%s dialogs=%d", s, b.Dialogs())
}

func eventually(t *testing.T, what string, d time.Duration, fn func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !fn() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const key = "replica-test-key-0123456789"

func TestStreamSnapshotResyncAndRoleSwap(t *testing.T) {
	pa, pb := testenv.FreePort(t), testenv.FreePort(t)
	la, lb := fmt.Sprintf("127.0.0.1:%d", pa), fmt.Sprintf("127.0.0.1:%d", pb)

	// A is active with calls up before the standby exists: they reach B
	// in the first snapshot.
	ra, _ := New(Options{Node: "a", Listen: la, Peer: lb, Key: []byte(key), RetryInterval: 20 * time.Millisecond, KeepAlive: 300 * time.Millisecond})
	ba := newBalancer(t, ra)
	src := source{ba, ra}
	now := time.Now()
	for i := 0; i < 300; i++ {
		id := fmt.Sprintf("early-%d", i)
		src.change(balancer.DialogEvent{Kind: balancer.DialogCreate, CallID: id, Core: cores[i%2].Name, At: now})
		if i%3 != 0 {
			src.change(balancer.DialogEvent{Kind: balancer.DialogConfirm, CallID: id, Core: cores[i%2].Name, At: now, Expires: now.Add(time.Hour)})
		}
	}
	if err := ba.DrainCore("core2"); err != nil {
		t.Fatal(err)
	}
	run(t, ra, true, ba)
	B := start(t, "b", lb, la, key, false, nil)
	same := func() bool { return perCore(B.b) == perCore(ba) }
	eventually(t, "snapshot mirrored", 3*time.Second, same)

	// Changes stream: 2000 calls set up and half of them ended.
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				id := fmt.Sprintf("w%d-%d", w, i)
				c := cores[i%2].Name
				src.change(balancer.DialogEvent{Kind: balancer.DialogCreate, CallID: id, Core: c, At: time.Now()})
				src.change(balancer.DialogEvent{Kind: balancer.DialogConfirm, CallID: id, Core: c, At: time.Now(), Expires: time.Now().Add(time.Hour)})
				if i%2 == 0 {
					src.change(balancer.DialogEvent{Kind: balancer.DialogEnd, CallID: id, Core: c, At: time.Now()})
				}
			}
		}(w)
	}
	wg.Wait()
	eventually(t, "events mirrored", 3*time.Second, same)
	st := ra.Status()
	if !st.Connected || st.Role != "active" || st.Counters["snapshots_sent"] != 1 || st.Counters["events_sent"] < 5000 {
		t.Errorf("A status %+v", st)
	}
	if sb := B.r.Status(); !sb.Connected || sb.Role != "standby" || sb.Counters["events_applied"] < 5000 || sb.Dialogs != ba.Dialogs() {
		t.Errorf("B status %+v", sb)
	}
	t.Logf("mirrored %s; A lag %.2f ms, %d frames for %d events", perCore(B.b), st.LagMS, st.Counters["frames_sent"], st.Counters["events_sent"])

	// B restarts: whatever changed meanwhile comes with the new snapshot.
	B.stop()
	for i := 0; i < 100; i++ {
		src.change(balancer.DialogEvent{Kind: balancer.DialogEnd, CallID: fmt.Sprintf("early-%d", i), Core: cores[i%2].Name})
	}
	ba.EnableCore("core2")
	B2 := start(t, "b", lb, la, key, false, B.b)
	eventually(t, "resynchronised after a reconnect", 3*time.Second, same)
	if n := B2.r.Status().Counters["snapshots_applied"]; n != 1 {
		t.Errorf("B applied %d snapshots after its restart, want 1", n)
	}

	// The VIP moves: B streams to A (A's table is B's).
	ra.SetActive(false)
	B2.r.SetActive(true)
	eventually(t, "B streams to A", 3*time.Second, func() bool { return ra.Status().Connected && B2.r.Status().Connected })
	if ba.Standby() == false || B2.b.Standby() {
		t.Errorf("standby modes: A %v, B %v", ba.Standby(), B2.b.Standby())
	}
	eventually(t, "A mirrors B", 3*time.Second, same)
}

func TestWrongKeyAndBothActive(t *testing.T) {
	pa, pb := testenv.FreePort(t), testenv.FreePort(t)
	la, lb := fmt.Sprintf("127.0.0.1:%d", pa), fmt.Sprintf("127.0.0.1:%d", pb)
	A := start(t, "a", la, lb, "another-key-0123456789abc", true, nil)
	B := start(t, "b", lb, la, key, false, nil)
	eventually(t, "forged handshakes rejected", 3*time.Second, func() bool { return B.r.Status().Counters["rejected_bad_mac"] >= 3 })
	if A.r.Status().Connected || B.r.Status().Connected || B.r.Status().Counters["sessions"] != 0 {
		t.Errorf("a session with the wrong key: A %+v B %+v", A.r.Status(), B.r.Status())
	}
	A.stop()

	// Both hold the VIP (split brain): neither mirrors the other.
	B.r.SetActive(true)
	A2 := start(t, "a", la, lb, key, true, nil)
	eventually(t, "streams refused", 3*time.Second, func() bool {
		return A2.r.Status().Counters["refused"] >= 2 && B.r.Status().Counters["refused"] >= 2
	})
	if A2.r.Status().Counters["sessions"] != 0 || B.r.Status().Counters["sessions"] != 0 {
		t.Errorf("sessions while both active: A %+v B %+v", A2.r.Status(), B.r.Status())
	}
}

// tap relays a TCP connection from a dialler to the real listener,
// keeping what the dialler sent (what anyone on the wire sees). Frozen,
// it forwards nothing more and leaves the listener's side open when the
// dialler goes, as a box that dies without a FIN does.
type tap struct {
	ln      net.Listener
	mu      sync.Mutex
	sent    []byte
	frozen  atomic.Bool
	bClosed chan struct{} // the listener closed its side
}

func newTap(t *testing.T, to string) *tap {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tp := &tap{ln: ln, bClosed: make(chan struct{})}
	t.Cleanup(func() { ln.Close() })
	go func() {
		// The first connection that reaches the listener is the one
		// relayed (the dialler retries while the listener is not up).
		var a, b net.Conn
		for b == nil {
			var err error
			if a, err = ln.Accept(); err != nil {
				return
			}
			if b, err = net.Dial("tcp", to); err != nil {
				a.Close()
				b = nil
			}
		}
		t.Cleanup(func() { a.Close(); b.Close() })
		pipe := func(dst, src net.Conn, record bool, eof func()) {
			buf := make([]byte, 32<<10)
			for {
				n, err := src.Read(buf)
				if n > 0 && record {
					tp.mu.Lock()
					if len(tp.sent) < 1<<20 {
						tp.sent = append(tp.sent, buf[:n]...)
					}
					tp.mu.Unlock()
				}
				if n > 0 && !tp.frozen.Load() {
					dst.Write(buf[:n])
				}
				if err != nil {
					eof()
					return
				}
			}
		}
		go pipe(b, a, true, func() {
			if !tp.frozen.Load() {
				b.Close()
			}
		})
		go pipe(a, b, false, func() {
			close(tp.bClosed)
			a.Close()
		})
	}()
	return tp
}

// captured returns the dialler's hello frame and the frames after it.
func (tp *tap) captured(t *testing.T) (hello, rest []byte) {
	t.Helper()
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if len(tp.sent) < headerLen {
		t.Fatal("nothing captured")
	}
	n := headerLen + int(binary.BigEndian.Uint32(tp.sent[24:])) + macLen
	if len(tp.sent) < n {
		t.Fatal("hello not captured")
	}
	return append([]byte(nil), tp.sent[:n]...), append([]byte(nil), tp.sent[n:]...)
}

// TestReplayedHello: a hello captured on the wire and replayed to the
// standby, alone and held open, followed by the rest of the captured
// session, or by garbage, does not disturb the live session:
// it is never adopted, events keep flowing, nobody resynchronises. A
// genuine reconnect (the active box restarted while its old connection
// still looks alive to the standby) still takes over at once, well before
// the standby would time the old one out.
func TestReplayedHello(t *testing.T) {
	pa, pa2, pb := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	la, la2, lb := fmt.Sprintf("127.0.0.1:%d", pa), fmt.Sprintf("127.0.0.1:%d", pa2), fmt.Sprintf("127.0.0.1:%d", pb)
	tp := newTap(t, lb)

	// B's silence timeout (3 x KeepAlive) is 6 s: a takeover faster than
	// that is not B giving up on a silent session.
	rb, err := New(Options{Node: "b", Listen: lb, Peer: la, Key: []byte(key), RetryInterval: 20 * time.Millisecond, KeepAlive: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	B := run(t, rb, false, nil)
	ra, err := New(Options{Node: "a", Listen: la, Peer: tp.ln.Addr().String(), Key: []byte(key), RetryInterval: 20 * time.Millisecond, KeepAlive: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ba := newBalancer(t, ra)
	src := source{ba, ra}
	calls := func(prefix string, n int) {
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("%s-%d", prefix, i)
			src.change(balancer.DialogEvent{Kind: balancer.DialogCreate, CallID: id, Core: cores[i%2].Name, At: time.Now()})
			src.change(balancer.DialogEvent{Kind: balancer.DialogConfirm, CallID: id, Core: cores[i%2].Name, At: time.Now(), Expires: time.Now().Add(time.Hour)})
		}
	}
	calls("before", 50)
	A := run(t, ra, true, ba)
	same := func() bool { return perCore(B.b) == perCore(ba) }
	eventually(t, "B mirrors A", 3*time.Second, same)
	calls("streamed", 50)
	eventually(t, "events mirrored", 3*time.Second, same)

	hello, rest := tp.captured(t)
	garbage := append([]byte(nil), rest[:min(len(rest), headerLen+macLen)]...)
	for i := range garbage {
		garbage[i] ^= 0x5a
	}
	copy(garbage, magic)
	garbage[4] = version
	// One at a time (a newer unproven connection from the peer's address
	// replaces an older one): each gets B's hello (B cannot know yet);
	// those followed by frames are dropped on their first frame, the last
	// stays open and silent.
	var replays []net.Conn
	for i, after := range [][]byte{rest, garbage, nil} {
		c, err := net.Dial("tcp", lb)
		if err != nil {
			t.Fatal(err)
		}
		replays = append(replays, c)
		if _, err := c.Write(append(append([]byte(nil), hello...), after...)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		h := make([]byte, headerLen)
		if _, err := io.ReadFull(c, h); err != nil || string(h[:4]) != magic || h[5] != frameHello {
			t.Fatalf("replay %d: no hello from B: %v %q", i, err, h)
		}
		if after != nil {
			if _, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("replay %d: B did not close it: %v", i, err)
			}
		}
	}
	calls("during", 100)
	for i := 0; i < 50; i++ {
		src.change(balancer.DialogEvent{Kind: balancer.DialogEnd, CallID: fmt.Sprintf("before-%d", i), Core: cores[i%2].Name, At: time.Now()})
	}
	time.Sleep(300 * time.Millisecond)
	for deadline := time.Now().Add(3 * time.Second); !same() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if !same() {
		t.Errorf("events stopped flowing after the replays: A %s, B %s", perCore(ba), perCore(B.b))
	}
	sa, sb := A.r.Status(), B.r.Status()
	if !sa.Connected || !sb.Connected || sa.Counters["sessions"] != 1 || sb.Counters["sessions"] != 1 ||
		sa.Counters["snapshots_sent"] != 1 || sb.Counters["snapshots_applied"] != 1 || sa.Counters["resyncs"] != 0 {
		t.Errorf("the replays disturbed the session:\nA %+v\nB %+v", sa, sb)
	}
	if sb.Counters["rejected_bad_mac"] == 0 || sb.Counters["rejected_malformed"]+sb.Counters["rejected_oversize"] == 0 || sb.Counters["connect_errors"] < 2 {
		t.Errorf("B did not drop the replays followed by frames (bad MAC, malformed or oversized): %+v", sb.Counters)
	}
	select {
	case <-tp.bClosed:
		t.Fatal("B closed the live session")
	default:
	}
	for _, c := range replays {
		c.Close()
	}

	// A dies without closing its connection (frozen tap); A restarted
	// (A2, other calls) reconnects directly: B takes the new session and
	// closes the old one, long before its 6 s silence timeout.
	tp.frozen.Store(true)
	A.stop()
	ra2, err := New(Options{Node: "a", Listen: la2, Peer: lb, Key: []byte(key), RetryInterval: 20 * time.Millisecond, KeepAlive: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ba2 := newBalancer(t, ra2)
	src = source{ba2, ra2}
	calls("restarted", 30)
	ba = ba2
	reconnect := time.Now()
	run(t, ra2, true, ba2)
	eventually(t, "B mirrors the restarted A", 2*time.Second, same)
	select {
	case <-tp.bClosed:
	case <-time.After(time.Second):
		t.Fatal("B kept the old session open after adopting the new one")
	}
	took := time.Since(reconnect)
	if sb := B.r.Status(); !sb.Connected || sb.Counters["sessions"] != 2 || sb.Counters["snapshots_applied"] != 2 || B.b.Dialogs() != 30 {
		t.Errorf("after the reconnect: B %+v, %d dialogs", sb, B.b.Dialogs())
	}
	t.Logf("reconnect adopted in %v", took.Round(time.Millisecond))
}
