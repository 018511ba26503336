// Package liveness tracks whether each subsystem of the daemon is still
// making progress. Subsystems beat from their own loops; the watchdog
// policy feeds the hardware watchdog only while every beat is recent, so a
// hung balancer resets the box instead of being fed blindly.
package liveness

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Registry holds the beats of every registered subsystem.
type Registry struct {
	mu    sync.Mutex
	beats map[string]*Beat
}

// New returns an empty registry.
func New() *Registry { return &Registry{beats: map[string]*Beat{}} }

// Beat is one subsystem's liveness.
type Beat struct {
	name   string
	within time.Duration
	last   atomic.Int64 // unix nanoseconds
}

// Register adds a subsystem that must beat at least once every within.
// Registering a name again replaces it. The beat starts fresh.
func (r *Registry) Register(name string, within time.Duration) *Beat {
	b := &Beat{name: name, within: within}
	b.Beat()
	r.mu.Lock()
	r.beats[name] = b
	r.mu.Unlock()
	return b
}

// Unregister removes a subsystem (it stopped on purpose).
func (r *Registry) Unregister(name string) {
	r.mu.Lock()
	delete(r.beats, name)
	r.mu.Unlock()
}

// Beat records that the subsystem is alive now.
func (b *Beat) Beat() { b.last.Store(time.Now().UnixNano()) }

// Status is one subsystem's liveness at a moment.
type Status struct {
	Name   string        `json:"name"`
	Last   time.Time     `json:"last"`
	Within time.Duration `json:"within"`
	OK     bool          `json:"ok"`
}

// Check reports whether every subsystem beat recently, and which did not.
func (r *Registry) Check(now time.Time) (ok bool, stale []string) {
	for _, s := range r.Snapshot(now) {
		if !s.OK {
			stale = append(stale, s.Name)
		}
	}
	return len(stale) == 0, stale
}

// Snapshot returns every subsystem's status, sorted by name.
func (r *Registry) Snapshot(now time.Time) []Status {
	r.mu.Lock()
	out := make([]Status, 0, len(r.beats))
	for _, b := range r.beats {
		last := time.Unix(0, b.last.Load())
		out = append(out, Status{Name: b.name, Last: last, Within: b.within, OK: now.Sub(last) <= b.within})
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
