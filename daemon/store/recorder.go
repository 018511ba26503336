package store

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// Recorder records events for subsystems: it logs each one at once and
// writes it to the store from its own goroutine, so a slow or full disk
// never stalls the caller. When the queue is full, events are dropped
// from the store (they are still logged) and counted.
type Recorder struct {
	st      *Store
	log     *slog.Logger
	q       chan Event
	dropped atomic.Uint64
	failed  atomic.Uint64
	queued  atomic.Uint64 // events put on q
	written atomic.Uint64 // events taken off q and written (or failed)
}

// NewRecorder returns a recorder writing to st (which may be nil: then
// events are only logged).
func NewRecorder(st *Store, log *slog.Logger) *Recorder {
	return &Recorder{st: st, log: log, q: make(chan Event, 1024)}
}

// Event records one event. It never blocks.
func (r *Recorder) Event(kind, subject, message string) {
	r.log.Info(message, "event", kind, "subject", subject)
	if r.st == nil {
		return
	}
	select {
	case r.q <- Event{Time: time.Now(), Kind: kind, Subject: subject, Message: message}:
		r.queued.Add(1)
	default:
		r.dropped.Add(1)
	}
}

// Dropped counts events not written because the queue was full; Failed
// counts events whose write failed (e.g. a full disk).
func (r *Recorder) Dropped() uint64 { return r.dropped.Load() }
func (r *Recorder) Failed() uint64  { return r.failed.Load() }

// Run writes queued events until ctx ends, then flushes what is queued.
func (r *Recorder) Run(ctx context.Context) error {
	for {
		select {
		case e := <-r.q:
			r.write(e)
		case <-ctx.Done():
			for {
				select {
				case e := <-r.q:
					r.write(e)
				default:
					return nil
				}
			}
		}
	}
}

func (r *Recorder) write(e Event) {
	defer r.written.Add(1)
	if _, err := r.st.Append(e); err != nil {
		r.failed.Add(1)
		r.log.Warn("event not stored", "event", e.Kind, "err", err)
	}
}

// Flush waits until every event recorded before the call has been
// written (or has failed to be), so a reader of the store sees what was
// already logged. It gives up when ctx ends and says so.
func (r *Recorder) Flush(ctx context.Context) error {
	target := r.queued.Load()
	for r.written.Load() < target {
		select {
		case <-ctx.Done():
			return fmt.Errorf("events: %d still queued for the store: %w", target-r.written.Load(), ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
	return nil
}
