package balancer

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sipedge/sipedge/hal/testenv"
)

// recEvents records events for assertions.
type recEvents struct {
	mu sync.Mutex
	ev []string
}

func (r *recEvents) Event(kind, core, reason string) {
	r.mu.Lock()
	r.ev = append(r.ev, kind+" "+core)
	r.mu.Unlock()
}

func (r *recEvents) has(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.ev {
		if e == s {
			return true
		}
	}
	return false
}

// lab is a balancer under test with its SIPp Cores. By default the
// balancer is the real binary (`sipedge run`, driven with `sipedge ctl`);
// SIPEDGE_BALANCER_INPROCESS=1 runs the same tests against the package
// in-process, which is quicker to debug.
type lab struct {
	t     *testing.T
	tgt   target
	port  int
	cores map[string]*sippProc
	ports map[string]int
}

// target is what the tests need from the balancer under test.
type target interface {
	cores() []CoreStatus
	drain(name string) error
	disable(name string) error
	stats() map[string]uint64
	dialogs() int
	hasEvent(kind, core string) bool
	coreSide() []string // the Core-facing sockets
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("SIPEDGE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startCore runs a SIPp Core with the given scenario on a fresh port.
func startCore(t *testing.T, name, scenario string, port int) *sippProc {
	return startSIPp(t, name, 120*time.Second, "-sf", "testdata/"+scenario, "-p", strconv.Itoa(port))
}

// newLab starts n SIPp Cores and a balancer in front of them.
func newLab(t *testing.T, n int, scenario string, mod func(*Options)) *lab {
	t.Helper()
	var sc []string
	for i := 0; i < n; i++ {
		sc = append(sc, scenario)
	}
	return newLabScenarios(t, sc, mod)
}

// newLabScenarios starts one SIPp Core per scenario and a balancer.
func newLabScenarios(t *testing.T, scenarios []string, mod func(*Options)) *lab {
	t.Helper()
	testenv.MustHaveSIPp(t)
	n := len(scenarios)
	l := &lab{t: t, cores: map[string]*sippProc{}, ports: map[string]int{}}
	var cores []CoreConfig
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("core%d", i)
		port := testenv.FreePort(t)
		l.ports[name] = port
		l.cores[name] = startCore(t, name, scenarios[i-1], port)
		cores = append(cores, CoreConfig{Name: name, Address: fmt.Sprintf("127.0.0.1:%d", port), Weight: 1})
	}
	l.port = testenv.FreePort(t)
	opt := Options{
		Listen:    []string{fmt.Sprintf("udp:127.0.0.1:%d", l.port), fmt.Sprintf("tcp:127.0.0.1:%d", l.port)},
		Algorithm: RoundRobin,
		Probe:     ProbeOptions{Interval: 300 * time.Millisecond, Timeout: 300 * time.Millisecond, DownAfter: 2, UpAfter: 2},
		Retry:     RetryOptions{AttemptTimeout: time.Second, MaxTries: 3},
		Cores:     cores,
		Logger:    testLogger(t),
	}
	if mod != nil {
		mod(&opt)
	}
	if os.Getenv("SIPEDGE_BALANCER_INPROCESS") == "1" {
		l.tgt = startInProcess(t, opt)
	} else {
		l.tgt = startBinary(t, opt)
	}
	var static []CoreConfig // a Core given by DNS name is waited for by its test
	for _, c := range opt.Cores {
		if ep, err := parseCoreEndpoint(c.Address); err == nil && ep.host == "" {
			static = append(static, c)
		}
	}
	l.waitProbed(10*time.Second, names(static)...)
	return l
}

// waitProbed waits until every named Core is active and has answered a
// probe (a Core starts active before its first probe).
func (l *lab) waitProbed(d time.Duration, names ...string) {
	l.t.Helper()
	l.waitCores(d, "active with a probe answered", func(c CoreStatus) bool {
		return c.State == StateActive && c.LastCode == 200
	}, names...)
}

type inProcess struct {
	b  *Balancer
	ev *recEvents
}

func startInProcess(t *testing.T, opt Options) *inProcess {
	testOptions(t, &opt)
	ip := &inProcess{ev: &recEvents{}}
	opt.Events = ip.ev
	b, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ip.b = b
	return ip
}

func (ip *inProcess) cores() []CoreStatus             { return ip.b.Cores() }
func (ip *inProcess) drain(n string) error            { return ip.b.DrainCore(n) }
func (ip *inProcess) disable(n string) error          { return ip.b.DisableCore(n) }
func (ip *inProcess) stats() map[string]uint64        { return ip.b.Stats().Snapshot() }
func (ip *inProcess) dialogs() int                    { return ip.b.Dialogs() }
func (ip *inProcess) coreSide() []string              { return ip.b.CoreAddrs() }
func (ip *inProcess) hasEvent(kind, core string) bool { return ip.ev.has(kind + " " + core) }

func names(cs []CoreConfig) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func (l *lab) core(name string) CoreStatus {
	for _, c := range l.tgt.cores() {
		if c.Name == name {
			return c
		}
	}
	l.t.Fatalf("no core %s", name)
	return CoreStatus{}
}

// waitState waits until every named Core is in state s.
func (l *lab) waitState(d time.Duration, s State, names ...string) {
	l.t.Helper()
	l.waitCores(d, string(s), func(c CoreStatus) bool { return c.State == s }, names...)
}

// waitCores waits up to d until every named Core satisfies ok.
func (l *lab) waitCores(d time.Duration, what string, ok func(CoreStatus) bool, names ...string) {
	l.t.Helper()
	deadline := time.Now().Add(d)
	for {
		all := true
		for _, n := range names {
			all = all && ok(l.core(n))
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("cores %v not %s within %v: %+v", names, what, d, l.tgt.cores())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// caller runs a SIPp UAC through the balancer: calls calls at rate cps,
// each held holdMS.
func (l *lab) caller(scenario string, calls, cps, holdMS int, extra ...string) *sippProc {
	args := []string{fmt.Sprintf("127.0.0.1:%d", l.port), "-sf", "testdata/" + scenario,
		"-p", strconv.Itoa(testenv.FreePort(l.t)), "-m", strconv.Itoa(calls), "-r", strconv.Itoa(cps),
		"-d", strconv.Itoa(holdMS), "-recv_timeout", "5000", "-s", "1000"}
	return startSIPp(l.t, "caller", 90*time.Second, append(args, extra...)...)
}

// runCalls runs a caller to completion and returns its successful and
// failed call counts.
func (l *lab) runCalls(scenario string, calls, cps, holdMS int) (ok, failed int) {
	l.t.Helper()
	p := l.caller(scenario, calls, cps, holdMS)
	p.Wait(60 * time.Second)
	ok, failed = p.Stat("SuccessfulCall(C)"), p.Stat("FailedCall(C)")
	if ok+failed != calls {
		l.t.Logf("caller output:\n%s", p.Output())
	}
	return ok, failed
}

// coreInvites returns how many INVITEs and BYEs a SIPp Core received.
func coreCounts(p *sippProc) (invites, byes int) {
	c := p.Counts()
	return c["INVITE_Recv"], c["BYE_Recv"]
}
