// Package history keeps the last hour of the box's traffic in memory for
// the status page's charts: one value per second for the last 10 minutes,
// 10-second averages before that, per named series, and the VIP events
// to mark on the time axis. Memory is bounded: a fixed number of slots
// per series, at most MaxSeries series and MaxEvents events; nothing is
// written to disk (a restart starts an empty hour).
package history

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"
)

// MethodHistory is the control method (and web view) that returns a
// Snapshot.
const MethodHistory = "history"

// Resolution and reach.
const (
	FineStep   = time.Second
	FineSlots  = 600 // 10 minutes at 1 s
	CoarseStep = 10 * time.Second
	CoarseSpan = time.Hour
	// CoarseSlots covers the hour (the fine part included: the page
	// draws fine where it has it, coarse before).
	CoarseSlots = int(CoarseSpan / CoarseStep)
	// MaxSeries bounds the series kept (the fixed ones and one latency
	// series per Core); further names are dropped.
	MaxSeries = 40
	// MaxEvents bounds the events kept (oldest dropped first).
	MaxEvents = 200
)

const coarseBy = int64(CoarseStep / FineStep)

// Event is a mark on the time axis (a VIP group changed state).
type Event struct {
	Time  time.Time `json:"time"`
	Group string    `json:"group"`
	State string    `json:"state"`
	Text  string    `json:"text"`
}

type series struct {
	fine   [FineSlots]float64
	coarse [CoarseSlots]float64
	sum    float64 // of the current coarse bucket
	n      int
}

// History is the ring of samples; the zero value is not usable, see New.
type History struct {
	mu     sync.Mutex
	last   int64 // unix second of the last sample; 0: none yet
	bucket int64 // current coarse bucket (unix second / 10)
	first  int64 // unix second of the first sample
	series map[string]*series
	order  []string
	events []Event
}

// New returns an empty history.
func New() *History { return &History{series: map[string]*series{}} }

func newSeries() *series {
	s := &series{}
	for i := range s.fine {
		s.fine[i] = math.NaN()
	}
	for i := range s.coarse {
		s.coarse[i] = math.NaN()
	}
	return s
}

// Record stores the values of the second t falls in (a second already
// recorded, or an earlier one, is ignored). Series not named are a gap
// for that second. At most MaxSeries names are kept.
func (h *History) Record(t time.Time, vals map[string]float64) {
	sec := t.Unix()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.last != 0 && sec <= h.last {
		return
	}
	if h.last == 0 {
		h.first, h.bucket = sec, sec/coarseBy
	} else if sec-h.last > int64(CoarseSpan/FineStep) {
		h.last = sec - int64(CoarseSpan/FineStep) // a long stall: the hour is empty
	}
	for name := range vals {
		if h.series[name] == nil && len(h.series) < MaxSeries {
			h.series[name] = newSeries()
			h.order = append(h.order, name)
		}
	}
	start := h.last + 1
	if h.last == 0 {
		start = sec
	}
	for s := start; s <= sec; s++ {
		if b := s / coarseBy; b != h.bucket {
			h.closeBuckets(b)
		}
		for name, sr := range h.series {
			v, ok := vals[name]
			if s != sec || !ok || math.IsNaN(v) || math.IsInf(v, 0) {
				v = math.NaN()
			} else {
				sr.sum += v
				sr.n++
			}
			sr.fine[s%FineSlots] = v
		}
	}
	h.last = sec
}

// closeBuckets writes the average of the current coarse bucket and
// blanks those up to b, which becomes current.
func (h *History) closeBuckets(b int64) {
	for _, sr := range h.series {
		v := math.NaN()
		if sr.n > 0 {
			v = sr.sum / float64(sr.n)
		}
		sr.coarse[h.bucket%int64(CoarseSlots)] = v
		for x := h.bucket + 1; x < b && x-h.bucket <= int64(CoarseSlots); x++ {
			sr.coarse[x%int64(CoarseSlots)] = math.NaN()
		}
		sr.sum, sr.n = 0, 0
	}
	h.bucket = b
}

// Mark adds an event (at most MaxEvents are kept; those older than an
// hour are dropped). A nil History drops it.
func (h *History) Mark(e Event) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	cut := e.Time.Add(-CoarseSpan)
	h.events = slices.DeleteFunc(h.events, func(x Event) bool { return x.Time.Before(cut) })
	h.events = append(h.events, e)
	if len(h.events) > MaxEvents {
		h.events = h.events[len(h.events)-MaxEvents:]
	}
}

// Num is a value in a Snapshot: JSON null when there is none (a gap),
// else rounded to 3 decimals.
type Num float64

// MarshalJSON renders NaN as null.
func (n Num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, math.Round(f*1000)/1000, 'f', -1, 64), nil
}

// UnmarshalJSON reads null as NaN.
func (n *Num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = Num(math.NaN())
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*n = Num(f)
	return nil
}

// Block is evenly spaced values: value i of each series is for the
// second Start + i*Step (unix seconds).
type Block struct {
	Start  int64            `json:"start"`
	Step   int64            `json:"step"`
	Series map[string][]Num `json:"series"`
}

// Snapshot is what the page draws: Coarse covers the hour before Fine,
// Fine the last FineSlots seconds (both only as far back as the first
// sample).
type Snapshot struct {
	Now    int64    `json:"now"`
	Fine   Block    `json:"fine"`
	Coarse Block    `json:"coarse"`
	Names  []string `json:"names"`
	Events []Event  `json:"events"`
}

// Snapshot returns the stored hour.
func (h *History) Snapshot() Snapshot {
	h.mu.Lock()
	defer h.mu.Unlock()
	sn := Snapshot{Now: h.last, Names: slices.Clone(h.order), Events: slices.Clone(h.events),
		Fine: Block{Step: 1, Series: map[string][]Num{}}, Coarse: Block{Step: coarseBy, Series: map[string][]Num{}}}
	if sn.Events == nil {
		sn.Events = []Event{}
	}
	if h.last == 0 {
		return sn
	}
	from := max(h.last-FineSlots+1, h.first)
	sn.Fine.Start = from
	// Coarse: whole buckets before the fine window, back to an hour
	// before now (and not before the first sample).
	cEnd := from / coarseBy // exclusive: the bucket the fine part starts in
	cStart := max((h.last-int64(CoarseSpan/FineStep))/coarseBy+1, h.first/coarseBy)
	cEnd = min(cEnd, h.bucket)
	sn.Coarse.Start = cStart * coarseBy
	for name, sr := range h.series {
		f := make([]Num, 0, h.last-from+1)
		for s := from; s <= h.last; s++ {
			f = append(f, Num(sr.fine[s%FineSlots]))
		}
		sn.Fine.Series[name] = f
		c := []Num{}
		for b := cStart; b < cEnd; b++ {
			c = append(c, Num(sr.coarse[b%int64(CoarseSlots)]))
		}
		sn.Coarse.Series[name] = c
	}
	return sn
}
