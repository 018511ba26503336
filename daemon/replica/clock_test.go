package replica

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/balancer"
	"github.com/sipedge/sipedge/hal/testenv"
)

// offsetClock is a wall clock off by an offset that a test steps.
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) now() time.Time         { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *offsetClock) set(d time.Duration)    { c.off.Store(int64(d)) }
func clockAt(d time.Duration) *offsetClock    { c := &offsetClock{}; c.set(d); return c }
func (c *offsetClock) opts(o Options) Options { o.now = c.now; return o }

// TestClocksHoursApart: the two boxes' clocks differ by hours, and the
// active box's clock then steps back half a day; the boxes pair, mirror
// and pair again after the standby restarts. The previous code refused a
// hello stamped more than 30 s from the standby's clock.
func TestClocksHoursApart(t *testing.T) {
	pa, pb := testenv.FreePort(t), testenv.FreePort(t)
	la, lb := fmt.Sprintf("127.0.0.1:%d", pa), fmt.Sprintf("127.0.0.1:%d", pb)
	ca, cb := clockAt(7*time.Hour), clockAt(-2*time.Hour)
	opt := func(name, listen, peer string, c *offsetClock) Options {
		return c.opts(Options{Node: name, Listen: listen, Peer: peer, Key: []byte(key), RetryInterval: 20 * time.Millisecond, KeepAlive: 300 * time.Millisecond})
	}
	ra, err := New(opt("a", la, lb, ca))
	if err != nil {
		t.Fatal(err)
	}
	ba := newBalancer(t, ra)
	src := source{ba, ra}
	A := run(t, ra, true, ba)
	rb, _ := New(opt("b", lb, la, cb))
	B := run(t, rb, false, nil)
	same := func(b *balancer.Balancer) func() bool { return func() bool { return perCore(b) == perCore(ba) } }
	for i := 0; i < 50; i++ {
		src.change(balancer.DialogEvent{Kind: balancer.DialogCreate, CallID: fmt.Sprintf("c-%d", i), Core: cores[i%2].Name, At: ca.now()})
	}
	eventually(t, "B (9 h behind A) mirrors A", 3*time.Second, same(B.b))

	ca.set(-5 * time.Hour) // A's clock steps back 12 h
	for i := 0; i < 50; i++ {
		src.change(balancer.DialogEvent{Kind: balancer.DialogEnd, CallID: fmt.Sprintf("c-%d", i), Core: cores[i%2].Name, At: ca.now()})
	}
	eventually(t, "events after the step mirrored", 3*time.Second, same(B.b))
	B.stop()
	rb2, _ := New(opt("b", lb, la, cb))
	B2 := run(t, rb2, false, nil)
	src.change(balancer.DialogEvent{Kind: balancer.DialogCreate, CallID: "after-restart", Core: cores[0].Name, At: ca.now()})
	eventually(t, "B restarted pairs again with A 3 h behind it", 3*time.Second, same(B2.b))
	// (A's dials while B restarted may have failed: connect_errors.)
	for _, st := range []Status{A.r.Status(), B2.r.Status()} {
		if !st.Connected || st.Counters["rejected_malformed"]+st.Counters["rejected_bad_mac"] != 0 {
			t.Errorf("%s: %+v", st.Role, st)
		}
	}
	if st := B2.r.Status(); st.Counters["connect_errors"] != 0 || st.Counters["sessions"] != 1 {
		t.Errorf("restarted B: %+v", st)
	}
	// Lag figures are differences on one clock, not across the two.
	for _, st := range []Status{A.r.Status(), B2.r.Status()} {
		if st.LagMS < 0 || st.LagMS > 2000 {
			t.Errorf("%s: lag %.1f ms with clocks hours apart", st.Role, st.LagMS)
		}
	}
}
