package balancer

import (
	"sync"
	"testing"
	"time"
)

type recDialogs struct {
	mu sync.Mutex
	ev []string
}

func (r *recDialogs) DialogEvent(e DialogEvent) {
	r.mu.Lock()
	r.ev = append(r.ev, e.Kind.String()+" "+e.CallID+" "+e.Core)
	r.mu.Unlock()
}

func TestDialogTableEventsAndCounts(t *testing.T) {
	a, _ := newCore(cc("a", 1, 0))
	b, _ := newCore(cc("b", 1, 0))
	obs := &recDialogs{}
	idle := 0
	d := newDialogTable(obs, time.Hour, time.Minute, func(*Core) { idle++ })

	d.create("c1", "ft", a)
	d.create("c1", "ft", b) // failover moves the early dialog
	if a.pending.Load() != 0 || b.pending.Load() != 1 {
		t.Fatalf("after failover: a pending %d, b pending %d", a.pending.Load(), b.pending.Load())
	}
	d.confirm("c1", 0, dialogTarget{calleeTag: "tt"})
	d.confirm("c1", 0, dialogTarget{calleeTag: "tt"}) // a retransmitted 2xx changes nothing
	if b.calls.Load() != 1 || b.pending.Load() != 0 {
		t.Fatalf("after confirm: b calls %d pending %d", b.calls.Load(), b.pending.Load())
	}
	d.end("c1", "bye")
	d.end("c1", "bye") // a retransmitted BYE changes nothing
	d.end("nosuch", "bye")
	if b.calls.Load() != 0 || b.pending.Load() != 0 || a.calls.Load() != 0 {
		t.Fatalf("after end: counts a=%d/%d b=%d/%d", a.calls.Load(), a.pending.Load(), b.calls.Load(), b.pending.Load())
	}
	want := []string{"create c1 a", "create c1 b", "confirm c1 b", "end c1 b"}
	if len(obs.ev) != len(want) {
		t.Fatalf("events %v, want %v", obs.ev, want)
	}
	for i := range want {
		if obs.ev[i] != want[i] {
			t.Fatalf("events %v, want %v", obs.ev, want)
		}
	}
}

func TestDialogExpiry(t *testing.T) {
	a, _ := newCore(cc("a", 1, 0))
	d := newDialogTable(nil, time.Hour, time.Minute, nil)
	d.create("short", "ft", a)
	d.confirm("short", 90*time.Second, dialogTarget{calleeTag: "tt"}) // Session-Expires 90 s
	d.create("long", "ft", a)
	d.confirm("long", 0, dialogTarget{calleeTag: "tt"}) // dialog timeout 1 h
	d.create("early", "ft", a)
	now := time.Now()
	if n := d.expire(now.Add(100 * time.Second)); n != 1 {
		t.Fatalf("expired %d at +100s, want 1 (early dialog past its bound)", n)
	}
	if n := d.expire(now.Add(130 * time.Second)); n != 1 {
		t.Fatalf("expired %d at +130s, want 1 (session-expires + 32 s)", n)
	}
	if a.calls.Load() != 1 || a.pending.Load() != 0 {
		t.Fatalf("counts after expiry: calls %d pending %d", a.calls.Load(), a.pending.Load())
	}
	if n := d.expire(now.Add(2 * time.Hour)); n != 1 || a.calls.Load() != 0 {
		t.Fatalf("expired %d at +2h, calls %d", n, a.calls.Load())
	}
}

func TestDecrNeverNegative(t *testing.T) {
	c, _ := newCore(cc("a", 1, 0))
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 1000; j++ {
				decr(&c.calls)
			}
		}()
	}
	wg.Wait()
	if c.calls.Load() != 0 {
		t.Fatalf("calls %d", c.calls.Load())
	}
}

func TestWheelFiresInOrderAndStops(t *testing.T) {
	w := newWheel(5*time.Millisecond, 64, nil)
	go w.run()
	defer w.close()
	var mu sync.Mutex
	var got []int
	done := make(chan struct{})
	for _, d := range []int{30, 10, 400, 20} { // 400 ms wraps the 64-slot wheel
		d := d
		w.after(time.Duration(d)*time.Millisecond, func() {
			mu.Lock()
			got = append(got, d)
			if len(got) == 3 {
				close(done)
			}
			mu.Unlock()
		})
	}
	stopped := w.after(15*time.Millisecond, func() { t.Error("stopped timer fired") })
	stopped.Stop()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("timers did not fire")
	}
	mu.Lock()
	defer mu.Unlock()
	if got[0] != 10 || got[1] != 20 || got[2] != 30 {
		t.Fatalf("order %v", got)
	}
}
