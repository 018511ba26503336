package faulttest

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/app"
	"github.com/sipedge/sipedge/daemon/balancer"
	"github.com/sipedge/sipedge/daemon/ctl"
	"github.com/sipedge/sipedge/daemon/internal/daemontest"
	"github.com/sipedge/sipedge/hal/testenv"
)

// TestKill9WhileChangingCores kills the real daemon with SIGKILL 100
// times while four clients change its Core pool through the control
// socket as fast as it answers (add a uniquely named Core, remove,
// drain, disable, enable: each answered after the store write). After
// every kill the daemon must start again on the same data dir, and
// `sipedge ctl cores` must show every change it acknowledged; the one
// change per client that was unanswered when it died may or may not be
// there.
func TestKill9WhileChangingCores(t *testing.T) {
	testenv.Short(t, "kills the real daemon 100 times")
	const rounds = 100
	dir := t.TempDir()
	dataDir := daemontest.New(t, dir).DataDir()
	cfg := fmt.Sprintf("node: {name: kill9, profile: single, data_dir: %q}\nlog: {level: warn, format: text}\nweb: {listen: \"\"}\n"+
		"sip:\n  listen: [\"udp:127.0.0.1:%d\"]\n  probe: {interval: 2s, timeout: 500ms}\n", dataDir, testenv.FreePort(t))
	coreAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)) // nothing answers there

	writers := make([]*coreWriter, 4)
	for i := range writers {
		writers[i] = &coreWriter{prefix: fmt.Sprintf("w%d-", i), addr: coreAddr, cores: map[string]coreWant{}}
	}
	var restarts []time.Duration
	began := time.Now()
	deadline := began.Add(3 * time.Minute)
	d := startDaemon(t, cfg, dir)
	for round := 0; round < rounds; round++ {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d rounds in %v", round, rounds, deadline.Sub(began))
		}
		var killed atomic.Bool
		var wg sync.WaitGroup
		for _, w := range writers {
			wg.Add(1)
			go func() { defer wg.Done(); w.run(d.Socket(), &killed) }()
		}
		time.Sleep(5*time.Millisecond + rand.N(295*time.Millisecond))
		killed.Store(true)
		d.Kill() // SIGKILL to the PID this test started, and wait for it
		wg.Wait()
		for _, w := range writers {
			if w.err != nil {
				t.Fatalf("round %d: a change failed before the kill: %v", round, w.err)
			}
		}

		start := time.Now()
		d = startDaemon(t, cfg, dir) // fails the test if the daemon exits or does not answer
		restarts = append(restarts, time.Since(start))
		var st app.CoresStatus
		d.CtlJSON(&st, "cores")
		for _, w := range writers {
			if err := w.settle(st.Cores); err != nil {
				t.Fatalf("round %d (%d acknowledged changes so far): %v", round, total(writers, acked), err)
			}
		}
	}
	d.stop()

	var sum, most time.Duration
	for _, r := range restarts {
		sum += r
		most = max(most, r)
	}
	t.Logf("%d kill -9 rounds in %v: %d acknowledged changes, none lost (%d unanswered at a kill, %d of them found applied)",
		rounds, time.Since(began).Round(time.Millisecond), total(writers, acked),
		total(writers, func(w *coreWriter) int { return w.unanswered }), total(writers, func(w *coreWriter) int { return w.applied }))
	t.Logf("restart to `ctl status` answering (polled every 50 ms): mean %v, max %v",
		(sum / time.Duration(len(restarts))).Round(time.Millisecond), most.Round(time.Millisecond))
}

// coreWant is what `ctl cores` must show of one Core.
type coreWant struct {
	address          string
	weight, maxCalls int
	admin            balancer.State // StateDisabled, StateDraining or "" (in service)
}

// matches reports whether the daemon's view of a Core is w.
func (w coreWant) matches(c balancer.CoreStatus) bool {
	if c.Address != w.address || c.Weight != w.weight || c.MaxCalls != w.maxCalls {
		return false
	}
	if w.admin != "" {
		return c.State == w.admin
	}
	return c.State != balancer.StateDisabled && c.State != balancer.StateDraining
}

// coreChange is one call of `cores.add|remove|drain|disable|enable`.
type coreChange struct {
	method string
	name   string
	want   *coreWant // the Core after the change; nil when removed
}

// coreWriter changes its own Cores (names starting with prefix) one
// call at a time and keeps what the daemon acknowledged.
type coreWriter struct {
	prefix string
	addr   string
	seq    int

	cores      map[string]coreWant // every acknowledged change applied
	inflight   *coreChange         // the call the daemon died in, if any
	acked      int
	unanswered int
	applied    int // unanswered changes found applied after the restart
	err        error
}

// next picks a change: an add while the writer has few Cores, a removal
// when it has many, else any of the five.
func (w *coreWriter) next() coreChange {
	names := slices.Sorted(maps.Keys(w.cores))
	kind := rand.IntN(5)
	switch {
	case len(names) < 3:
		kind = 0
	case len(names) >= 8:
		kind = 1
	}
	if kind == 0 {
		w.seq++
		return coreChange{method: "cores.add", name: fmt.Sprintf("%sc%05d", w.prefix, w.seq),
			want: &coreWant{address: w.addr, weight: 1 + w.seq%5, maxCalls: w.seq % 97}}
	}
	n := names[rand.IntN(len(names))]
	if kind == 1 {
		return coreChange{method: "cores.remove", name: n}
	}
	c := w.cores[n]
	c.admin = [...]balancer.State{balancer.StateDraining, balancer.StateDisabled, ""}[kind-2]
	return coreChange{method: "cores." + [...]string{"drain", "disable", "enable"}[kind-2], name: n, want: &c}
}

// apply returns cores with ch made.
func (ch *coreChange) apply(cores map[string]coreWant) map[string]coreWant {
	out := maps.Clone(cores)
	if ch.want == nil {
		delete(out, ch.name)
	} else {
		out[ch.name] = *ch.want
	}
	return out
}

// run makes changes through the control socket until the daemon dies.
// A call that fails before killed is set is an error.
func (w *coreWriter) run(socket string, killed *atomic.Bool) {
	for {
		ch := w.next()
		var params any = map[string]string{"name": ch.name}
		if ch.method == "cores.add" {
			params = balancer.CoreConfig{Name: ch.name, Address: ch.want.address, Weight: ch.want.weight, MaxCalls: ch.want.maxCalls}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := ctl.Call(ctx, socket, ch.method, params, nil)
		cancel()
		if err != nil {
			if killed.Load() && ctl.CodeOf(err) == ctl.CodeUnreachable {
				w.inflight = &ch
				w.unanswered++
				return
			}
			w.err = fmt.Errorf("%s %s: %s: %v", ch.method, ch.name, ctl.CodeOf(err), err)
			return
		}
		w.cores = ch.apply(w.cores)
		w.acked++
	}
}

// settle checks the daemon's Cores after a restart against the
// acknowledged changes, with or without the unanswered one, and takes
// the daemon's view as the base of the next round.
func (w *coreWriter) settle(all []balancer.CoreStatus) error {
	got := map[string]balancer.CoreStatus{}
	for _, c := range all {
		if strings.HasPrefix(c.Name, w.prefix) {
			got[c.Name] = c
		}
	}
	ch := w.inflight
	w.inflight = nil
	if holds(w.cores, got) {
		return nil
	}
	if ch != nil {
		if after := ch.apply(w.cores); holds(after, got) {
			w.cores = after
			w.applied++
			return nil
		}
	}
	var lost []string
	for name, want := range w.cores {
		if c, ok := got[name]; !ok {
			lost = append(lost, fmt.Sprintf("%s missing (want %+v)", name, want))
		} else if !want.matches(c) {
			lost = append(lost, fmt.Sprintf("%s is %s %s w%d max %d (want %+v)", name, c.State, c.Address, c.Weight, c.MaxCalls, want))
		}
	}
	for name := range got {
		if _, ok := w.cores[name]; !ok {
			lost = append(lost, name+" present, acknowledged as removed or never added")
		}
	}
	slices.Sort(lost)
	return fmt.Errorf("acknowledged changes lost (unanswered change: %+v): %s", ch, strings.Join(lost, "; "))
}

// holds reports whether got is exactly want.
func holds(want map[string]coreWant, got map[string]balancer.CoreStatus) bool {
	if len(want) != len(got) {
		return false
	}
	for name, w := range want {
		if c, ok := got[name]; !ok || !w.matches(c) {
			return false
		}
	}
	return true
}

// total sums a count of the writers.
func total(ws []*coreWriter, count func(*coreWriter) int) (n int) {
	for _, w := range ws {
		n += count(w)
	}
	return n
}

func acked(w *coreWriter) int { return w.acked }
