package replica

import (
	"context"
	"fmt"
	"sync"
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
