package failover

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// notifier runs the notify command of each transition, in order, one at
// a time, each bounded by its timeout, outside the Manager's lock.
type notifier struct {
	log   *slog.Logger
	mu    sync.Mutex
	queue []notifyJob
	busy  bool
	wg    sync.WaitGroup
}

type notifyJob struct {
	cmd     string
	timeout time.Duration
	args    []string
}

// maxNotifyQueue bounds the backlog when a notify program is slow.
const maxNotifyQueue = 64

func newNotifier(log *slog.Logger) *notifier { return &notifier{log: log} }

// run queues "cmd group newstate oldstate reason".
func (n *notifier) run(cmd string, timeout time.Duration, args ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.queue) >= maxNotifyQueue {
		n.log.Error("notify backlog full, dropping notification", "cmd", cmd, "args", args)
		return
	}
	n.queue = append(n.queue, notifyJob{cmd, timeout, args})
	if !n.busy {
		n.busy = true
		n.wg.Add(1)
		go n.drain()
	}
}

func (n *notifier) drain() {
	defer n.wg.Done()
	for {
		n.mu.Lock()
		if len(n.queue) == 0 {
			n.busy = false
			n.mu.Unlock()
			return
		}
		j := n.queue[0]
		n.queue = n.queue[1:]
		n.mu.Unlock()
		n.exec(j)
	}
}

func (n *notifier) exec(j notifyJob) {
	ctx, cancel := context.WithTimeout(context.Background(), j.timeout)
	defer cancel()
	c := exec.CommandContext(ctx, j.cmd, j.args...)
	c.Env = append(os.Environ(),
		"SIPEDGE_VIP_GROUP="+j.args[0],
		"SIPEDGE_VIP_STATE="+j.args[1],
		"SIPEDGE_VIP_PREVIOUS="+j.args[2],
		"SIPEDGE_VIP_REASON="+j.args[3])
	c.WaitDelay = time.Second
	start := time.Now()
	out, err := c.CombinedOutput()
	attrs := []any{"cmd", j.cmd, "args", j.args, "took", time.Since(start).Round(time.Millisecond)}
	if s := strings.TrimSpace(string(out)); s != "" {
		attrs = append(attrs, "output", truncate(s, 512))
	}
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		n.log.Error("notify command timed out and was killed", append(attrs, "timeout", j.timeout)...)
	case err != nil:
		n.log.Error("notify command failed", append(attrs, "err", err)...)
	default:
		n.log.Info("notify command ran", attrs...)
	}
}

// wait blocks until every queued notification has run.
func (n *notifier) wait() { n.wg.Wait() }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
