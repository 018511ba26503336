package balancer

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// wheel is a hashed timer wheel: every transaction timer of the balancer
// lives here, run by one goroutine, instead of a goroutine or a runtime
// timer per transaction.
type wheel struct {
	tick  time.Duration
	start time.Time
	log   *slog.Logger

	mu    sync.Mutex
	slots [][]*timer
	cur   uint64 // ticks processed

	stop    chan struct{}
	done    chan struct{}
	lastRun atomic.Int64 // unix ns of the last tick
}

// timer is one scheduled callback: fn, or tgt.onTimer(kind) for a
// transaction's own timers (no closure to allocate). Stop is safe from
// any goroutine.
type timer struct {
	due  uint64
	dead atomic.Bool
	kind timerKind
	mu   sync.Mutex // guards fn and tgt (a plain func: no second allocation for a pointer to it)
	fn   func()
	tgt  timerTarget
}

// timerTarget is a transaction whose timers the wheel fires by kind.
type timerTarget interface{ onTimer(timerKind) }

type timerKind uint8

const (
	timerClient timerKind = iota // client: retransmission (T1 doubling) or attempt timer, Timer B/F
	timerInvite                  // client: Timer C
	timerEnd                     // server: linger over, Timer H or I
	timerFinal                   // server: Timer G
)

// Stop cancels the timer; a nil timer is fine. It lets go of the
// callback at once, so a stopped timer waiting for its slot to come round
// (up to one turn of the wheel) does not keep a finished transaction
// alive.
func (t *timer) Stop() {
	if t != nil {
		t.dead.Store(true)
		t.mu.Lock()
		t.fn, t.tgt = nil, nil
		t.mu.Unlock()
	}
}

func newWheel(tick time.Duration, slots int, log *slog.Logger) *wheel {
	w := &wheel{tick: tick, start: time.Now(), log: log, slots: make([][]*timer, slots),
		stop: make(chan struct{}), done: make(chan struct{})}
	w.lastRun.Store(time.Now().UnixNano())
	return w
}

func (w *wheel) now() uint64 { return uint64(time.Since(w.start) / w.tick) }

// after schedules fn to run after d on the wheel goroutine. fn must not
// block.
func (w *wheel) after(d time.Duration, fn func()) *timer {
	return w.schedule(d, &timer{fn: fn})
}

// afterTx schedules tgt.onTimer(kind) after d on the wheel goroutine.
func (w *wheel) afterTx(d time.Duration, tgt timerTarget, kind timerKind) *timer {
	return w.schedule(d, &timer{tgt: tgt, kind: kind})
}

func (w *wheel) schedule(d time.Duration, t *timer) *timer {
	ticks := uint64((d + w.tick - 1) / w.tick)
	if ticks == 0 {
		ticks = 1
	}
	w.mu.Lock()
	t.due = w.cur + ticks
	i := t.due % uint64(len(w.slots))
	w.slots[i] = append(w.slots[i], t)
	w.mu.Unlock()
	return t
}

func (w *wheel) run() {
	defer close(w.done)
	tk := time.NewTicker(w.tick)
	defer tk.Stop()
	var due []*timer
	for {
		select {
		case <-w.stop:
			return
		case <-tk.C:
		}
		w.lastRun.Store(time.Now().UnixNano())
		target := w.now()
		w.mu.Lock()
		for w.cur < target {
			w.cur++
			i := w.cur % uint64(len(w.slots))
			s := w.slots[i]
			keep := s[:0]
			for _, t := range s {
				switch {
				case t.dead.Load():
				case t.due <= w.cur:
					due = append(due, t)
				default:
					keep = append(keep, t)
				}
			}
			clear(s[len(keep):])
			if cap(keep) > 1024 && len(keep) < cap(keep)/4 {
				keep = append([]*timer(nil), keep...)
			}
			w.slots[i] = keep
		}
		w.mu.Unlock()
		for i, t := range due {
			if !t.dead.Load() {
				w.fire(t)
			}
			due[i] = nil
		}
		due = due[:0]
	}
}

func (w *wheel) fire(t *timer) {
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("timer callback panicked", "panic", r)
		}
	}()
	t.mu.Lock()
	fn, tgt := t.fn, t.tgt
	t.mu.Unlock()
	switch {
	case fn != nil:
		fn()
	case tgt != nil:
		tgt.onTimer(t.kind)
	}
}

func (w *wheel) close() {
	close(w.stop)
	<-w.done
}
