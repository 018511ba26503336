package history

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"
)

var t0 = time.Unix(1_800_000_000, 0) // a multiple of 10 s

// TestFineAndCoarse: 70 minutes of a ramp: the last 600 seconds are
// there one per second, the 50 minutes before as 10-second averages, and
// nothing older than an hour.
func TestFineAndCoarse(t *testing.T) {
	h := New()
	const n = 70 * 60
	for i := range n {
		h.Record(t0.Add(time.Duration(i)*time.Second), map[string]float64{"cps": float64(i)})
	}
	s := h.Snapshot()
	last := t0.Unix() + n - 1
	if s.Now != last || s.Fine.Start != last-599 || len(s.Fine.Series["cps"]) != 600 {
		t.Fatalf("fine: now %d start %d len %d", s.Now, s.Fine.Start, len(s.Fine.Series["cps"]))
	}
	for i, v := range s.Fine.Series["cps"] {
		if want := float64(s.Fine.Start - t0.Unix() + int64(i)); float64(v) != want {
			t.Fatalf("fine[%d] = %v, want %v", i, v, want)
		}
	}
	c := s.Coarse.Series["cps"]
	if s.Coarse.Start < last-3600 || s.Coarse.Start+int64(len(c))*10 > s.Fine.Start || len(c) < 295 {
		t.Fatalf("coarse: start %d (hour ago %d), %d buckets, fine from %d", s.Coarse.Start, last-3600, len(c), s.Fine.Start)
	}
	for i, v := range c {
		b := s.Coarse.Start + int64(i)*10 - t0.Unix()
		if want := float64(b) + 4.5; float64(v) != want {
			t.Fatalf("coarse[%d] = %v, want %v (average of its 10 seconds)", i, v, want)
		}
	}
}

// TestGapsAndBounds: missing seconds and series are gaps (null in JSON),
// a second recorded twice keeps the first value, series and events are
// capped.
func TestGapsAndBounds(t *testing.T) {
	h := New()
	h.Record(t0, map[string]float64{"a": 1, "b": 2})
	h.Record(t0, map[string]float64{"a": 9}) // same second: ignored
	h.Record(t0.Add(3*time.Second), map[string]float64{"a": 4, "b": math.NaN()})
	s := h.Snapshot()
	a, b := s.Fine.Series["a"], s.Fine.Series["b"]
	if len(a) != 4 || a[0] != 1 || !math.IsNaN(float64(a[1])) || !math.IsNaN(float64(a[2])) || a[3] != 4 || b[0] != 2 || !math.IsNaN(float64(b[3])) {
		t.Fatalf("a %v b %v", a, b)
	}
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back Snapshot
	if err := json.Unmarshal(raw, &back); err != nil || back.Fine.Series["a"][3] != 4 || !math.IsNaN(float64(back.Fine.Series["a"][1])) {
		t.Fatalf("JSON round trip: %v %s", err, raw)
	}
	vals := map[string]float64{}
	for i := range 2 * MaxSeries {
		vals[fmt.Sprint("core", i)] = 1
	}
	h.Record(t0.Add(4*time.Second), vals)
	if n := len(h.Snapshot().Fine.Series); n != MaxSeries {
		t.Errorf("%d series kept, at most %d", n, MaxSeries)
	}
	for i := range 3 * MaxEvents {
		h.Mark(Event{Time: t0.Add(time.Duration(i) * time.Millisecond), Group: "sip", State: "master"})
	}
	h.Mark(Event{Time: t0.Add(2 * time.Hour), Group: "sip", State: "backup"})
	if ev := h.Snapshot().Events; len(ev) != 1 || ev[0].State != "backup" {
		t.Errorf("events %d, want only the one within the hour", len(ev))
	}
	// A stall longer than the hour leaves an empty hour, not stale values.
	h.Record(t0.Add(3*time.Hour), map[string]float64{"a": 5})
	s = h.Snapshot()
	for i, v := range s.Fine.Series["a"][:len(s.Fine.Series["a"])-1] {
		if !math.IsNaN(float64(v)) {
			t.Fatalf("after a 3 h stall fine[%d] = %v", i, v)
		}
	}
	for i, v := range s.Coarse.Series["a"] {
		if !math.IsNaN(float64(v)) {
			t.Fatalf("after a 3 h stall coarse[%d] = %v", i, v)
		}
	}
}
