package liveness

import (
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	r := New()
	sip := r.Register("sip", time.Second)
	r.Register("vip", 3*time.Second)
	now := time.Now()
	if ok, stale := r.Check(now); !ok {
		t.Fatalf("fresh registry stale: %v", stale)
	}
	ok, stale := r.Check(now.Add(2 * time.Second))
	if ok || len(stale) != 1 || stale[0] != "sip" {
		t.Fatalf("after 2s: ok=%v stale=%v, want sip stale", ok, stale)
	}
	sip.last.Store(now.Add(2 * time.Second).UnixNano())
	if ok, stale := r.Check(now.Add(2 * time.Second)); !ok {
		t.Fatalf("after beat: %v", stale)
	}
	r.Unregister("sip")
	if ok, stale := r.Check(now.Add(5 * time.Second)); ok || stale[0] != "vip" {
		t.Fatalf("vip should be stale at 5s: %v", stale)
	}
}
