package failover

import (
	"sync"
	"time"
)

// RejectLogEvery is the shortest gap between two log lines for one
// rejection reason. Anyone on the heartbeat link can send junk at line
// rate; on the appliance the log goes to a 115200-baud serial console,
// where one line takes about 10 ms.
const RejectLogEvery = 5 * time.Second

// rejects counts rejected heartbeats by reason and decides which of them
// are logged: the first of a reason, then at most one every
// RejectLogEvery, carrying how many were left out since the previous
// line. It has its own lock: a flood of junk never takes the Manager's
// mutex, and nothing is logged while a lock is held.
type rejects struct {
	mu    sync.Mutex
	count map[string]uint64
	lines map[string]*rejectLine
}

type rejectLine struct {
	last       time.Time // when the last line for this reason was logged
	suppressed uint64    // rejections not logged since
}

func newRejects() *rejects {
	return &rejects{count: map[string]uint64{}, lines: map[string]*rejectLine{}}
}

// add counts one rejection for reason at now. It reports whether a line
// is due, and how many rejections of the reason went unlogged before it.
func (r *rejects) add(reason string, now time.Time) (logIt bool, suppressed uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.count[reason]++
	l := r.lines[reason]
	if l == nil {
		l = &rejectLine{}
		r.lines[reason] = l
	} else if now.Sub(l.last) < RejectLogEvery {
		l.suppressed++
		return false, 0
	}
	suppressed, l.last, l.suppressed = l.suppressed, now, 0
	return true, suppressed
}

// counts returns a copy of the counters.
func (r *rejects) counts() map[string]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]uint64, len(r.count))
	for k, v := range r.count {
		out[k] = v
	}
	return out
}
