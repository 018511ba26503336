package initd

import (
	"context"
	"os"
	"os/signal"
	"sync"

	"golang.org/x/sys/unix"
)

// Reaper collects every child and orphan that exits (PID 1's duty) and
// hands the exit status of a watched process to whoever waits for it.
// Processes that PID 1 supervises must be started without exec.Cmd.Wait
// (os.StartProcess) and waited for here, since the reaper takes every
// status.
type Reaper struct {
	mu      sync.Mutex
	waiters map[int]chan unix.WaitStatus
	early   map[int]unix.WaitStatus // exited before anyone waited
	order   []int
}

// NewReaper returns a Reaper; call Run.
func NewReaper() *Reaper {
	return &Reaper{waiters: map[int]chan unix.WaitStatus{}, early: map[int]unix.WaitStatus{}}
}

// Run reaps on every SIGCHLD until ctx ends.
func (r *Reaper) Run(ctx context.Context) {
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, unix.SIGCHLD)
	defer signal.Stop(ch)
	for {
		r.ReapAll()
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
	}
}

// ReapAll collects every exited child now.
func (r *Reaper) ReapAll() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
		if !ws.Exited() && !ws.Signaled() {
			continue // stopped or continued: still alive
		}
		r.deliver(pid, ws)
	}
}

func (r *Reaper) deliver(pid int, ws unix.WaitStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.waiters[pid]; ok {
		delete(r.waiters, pid)
		c <- ws
		return
	}
	r.early[pid] = ws
	r.order = append(r.order, pid)
	for len(r.order) > 256 { // orphans nobody waits for
		delete(r.early, r.order[0])
		r.order = r.order[1:]
	}
}

// Wait returns a channel that receives pid's exit status once.
func (r *Reaper) Wait(pid int) <-chan unix.WaitStatus {
	c := make(chan unix.WaitStatus, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if ws, ok := r.early[pid]; ok {
		delete(r.early, pid)
		c <- ws
		return c
	}
	r.waiters[pid] = c
	return c
}
