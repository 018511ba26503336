package console

import (
	"errors"
	"testing"
	"time"
)

func TestGateLockout(t *testing.T) {
	now := time.Unix(1000, 0)
	g := NewGate(func() time.Time { return now })
	fail := func() (int, time.Duration) {
		t.Helper()
		if err := g.Begin(); err != nil {
			t.Fatalf("Begin: %v", err)
		}
		return g.Done(false)
	}
	for i := 1; i < LockAfter; i++ {
		if n, l := fail(); n != i || l != 0 {
			t.Fatalf("failure %d: %d, locked %v", i, n, l)
		}
	}
	if n, l := fail(); n != LockAfter || l != LockFor {
		t.Fatalf("failure %d: locked %v, want %v", n, l, LockFor)
	}
	if err := g.Begin(); !errors.Is(err, ErrLocked) {
		t.Fatalf("Begin while locked: %v", err)
	}
	now = now.Add(LockFor)
	if _, l := fail(); l != 2*LockFor {
		t.Fatalf("next failure locks %v, want %v", l, 2*LockFor)
	}
	for range 10 {
		now = now.Add(LockMax)
		fail()
	}
	if l := g.Locked(); l != LockMax {
		t.Fatalf("lock capped at %v, want %v", l, LockMax)
	}
	now = now.Add(LockMax)
	if err := g.Begin(); err != nil {
		t.Fatal(err)
	}
	if n, l := g.Done(true); n != 0 || l != 0 {
		t.Fatalf("success: %d %v", n, l)
	}
	if n, _ := fail(); n != 1 {
		t.Fatalf("failures after a success: %d", n)
	}
}

// TestGateOneAtATime: a second check while one is in flight is refused
// at once, and the one in flight already counts as a failure.
func TestGateOneAtATime(t *testing.T) {
	g := NewGate(nil)
	if err := g.Begin(); err != nil {
		t.Fatal(err)
	}
	if err := g.Begin(); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Begin: %v", err)
	}
	g.mu.Lock()
	n := g.failures
	g.mu.Unlock()
	if n != 1 {
		t.Fatalf("failures during the check: %d, want 1 (counted before the hash)", n)
	}
}
