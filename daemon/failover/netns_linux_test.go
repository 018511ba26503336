package failover

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sipedge/sipedge/hal/testenv"
)

// The integration test runs the real sipedge binary in two network
// namespaces (boxes A and B) on a bridge with a client namespace that
// probes the VIP every 10 ms over UDP. See TestNetnsFailover.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// sipedgeBinary builds the daemon once per test process.
func sipedgeBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("SIPEDGE_FAILOVER_BIN"); p != "" {
			binPath = p // measure another build (e.g. an older one)
			return
		}
		dir, err := os.MkdirTemp("", "sipedge-failover-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "sipedge")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/sipedge/sipedge/daemon").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

const (
	nsVIP     = "192.0.2.10"
	nsEchoPrt = 7
)

type lab struct {
	t        *testing.T
	dir      string
	br, a, b string // namespace names
	c        string
	key      string
	// deadtime and initdead of the boxes' configs ("": 300ms, 1s).
	deadtime, initdead string
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newLab(t *testing.T) *lab { return newLabNamed(t, "fo") }

// newLabNamed is newLab with the namespaces' name prefix.
func newLabNamed(t *testing.T, prefix string) *lab {
	sfx := fmt.Sprintf("%d%03d", os.Getpid()%100000, time.Now().UnixNano()%1000)
	l := &lab{t: t, dir: t.TempDir(), br: prefix + "br" + sfx, a: prefix + "a" + sfx, b: prefix + "b" + sfx, c: prefix + "c" + sfx}
	for _, ns := range []string{l.br, l.a, l.b, l.c} {
		run(t, "ip", "netns", "add", ns)
		ns := ns
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "ip", "-n", l.br, "link", "add", "br0", "type", "bridge")
	run(t, "ip", "-n", l.br, "link", "set", "br0", "up")
	for i, h := range []struct{ ns, addr string }{{l.a, "192.0.2.11/24"}, {l.b, "192.0.2.12/24"}, {l.c, "192.0.2.100/24"}} {
		port := fmt.Sprintf("p%d", i)
		run(t, "ip", "-n", l.br, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.ns)
		run(t, "ip", "-n", l.br, "link", "set", port, "master", "br0", "up")
		run(t, "ip", "-n", h.ns, "addr", "add", h.addr, "dev", "eth0")
		run(t, "ip", "-n", h.ns, "link", "set", "eth0", "up")
	}
	l.key = filepath.Join(l.dir, "cluster.key")
	if err := os.WriteFile(l.key, []byte("netns-test-key-0123456789abcdef-cluster"), 0o600); err != nil {
		t.Fatal(err)
	}
	return l
}

// echo answers UDP probes sent to the VIP in box ns (bound with
// IP_FREEBIND and IP_TRANSPARENT, so it receives only while the box holds
// the VIP, and answers from the VIP), and a TCP listener on 127.0.0.1:3306 for the DB track.
var echoWriteErrs atomic.Int64

func (l *lab) services(ns, name string) {
	t := l.t
	var uc *net.UDPConn
	var tl net.Listener
	err := testenv.InNetns(ns, func() error {
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_FREEBIND, 1)
				if serr == nil {
					// A probe received just before a release is answered
					// just after it: without IP_TRANSPARENT the kernel
					// refuses the VIP as source once it is gone
					// (ENETUNREACH) and the reply is lost. Measured: all
					// the losses left once the relay was in place.
					serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TRANSPARENT, 1)
				}
			})
			return serr
		}}
		pc, err := lc.ListenPacket(context.Background(), "udp4", fmt.Sprintf("%s:%d", nsVIP, nsEchoPrt))
		if err != nil {
			return err
		}
		uc = pc.(*net.UDPConn)
		tl, err = net.Listen("tcp4", "127.0.0.1:3306")
		return err
	})
	if err != nil {
		t.Fatalf("services in %s: %v", ns, err)
	}
	t.Cleanup(func() { uc.Close(); tl.Close() })
	go func() {
		buf := make([]byte, 64)
		for {
			n, from, err := uc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if n >= 8 {
				reply := append(append([]byte(nil), buf[:8]...), name...)
				if _, err := uc.WriteToUDPAddrPort(reply, from); err != nil {
					echoWriteErrs.Add(1)
					if os.Getenv("DBGECHO") != "" {
						fmt.Fprintf(os.Stderr, "%s echo %s: %v\n", time.Now().Format("15:04:05.000000"), name, err)
					}
				}
			}
		}
	}()
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

func (l *lab) config(name, self, peer, role string, prio int) string {
	data := filepath.Join(l.dir, name)
	os.MkdirAll(data, 0o755)
	cfg := fmt.Sprintf(`node: {name: %s, profile: four-box, platform: generic-x86_64, data_dir: %s}
log: {level: debug}
cluster: {listen: "%s:694", peer: "%s:694", key_file: %s, interval: 100ms}
vips:
  - name: db
    address: %s/24
    interface: eth0
    role: %s
    priority: %d
    deadtime: %s
    initdead: %s
    failback: {enabled: true, stable_for: 1s}
    garp: {count: 3, repeat_after: 1s}
    track: [{tcp: "127.0.0.1:3306"}]
`, name, data, self, peer, l.key, nsVIP, role, prio, cmp.Or(l.deadtime, "300ms"), cmp.Or(l.initdead, "1s"))
	p := filepath.Join(l.dir, name+".yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		l.t.Fatal(err)
	}
	return p
}

type box struct {
	name, ns, cfg string
	bin           string // "": this tree's build
	cmd           *exec.Cmd
	done          chan error
	log           *os.File
}

func (l *lab) start(b *box) {
	t := l.t
	bin := sipedgeBinary(t)
	f, err := os.OpenFile(filepath.Join(l.dir, b.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	b.log = f
	if b.bin != "" {
		bin = b.bin
	}
	b.cmd = exec.Command("ip", "netns", "exec", b.ns, bin, "run", "-config", b.cfg)
	b.cmd.Stdout, b.cmd.Stderr = f, f
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b.done = make(chan error, 1)
	go func(c *exec.Cmd, done chan error) { done <- c.Wait() }(b.cmd, b.done)
	t.Cleanup(func() { l.stop(b, syscall.SIGKILL) })
}

// stop signals b and waits for it (bounded).
func (l *lab) stop(b *box, sig syscall.Signal) {
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Signal(sig)
	select {
	case <-b.done:
	case <-time.After(15 * time.Second):
		b.cmd.Process.Kill()
		<-b.done
		l.t.Errorf("%s did not stop on %v", b.name, sig)
	}
	b.cmd = nil
	b.log.Close()
}

func (l *lab) vip(b *box) Status {
	l.t.Helper()
	out, err := exec.Command(sipedgeBinary(l.t), "ctl", "-config", b.cfg, "-json", "vip").Output()
	if err != nil {
		return Status{}
	}
	var st Status
	if err := json.Unmarshal(out, &st); err != nil {
		l.t.Fatalf("ctl vip: %v: %s", err, out)
	}
	return st
}

func (l *lab) state(b *box) string {
	st := l.vip(b)
	if len(st.Groups) == 0 {
		return ""
	}
	return st.Groups[0].State
}

func (l *lab) waitState(b *box, want string, max time.Duration) {
	l.t.Helper()
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		if l.state(b) == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	l.t.Fatalf("%s not %s after %v (is %q); log:\n%s", b.name, want, max, l.state(b), l.tail(b))
}

// wantReason checks why b is in its current state: the mechanism a
// handover went through, which a timing bound with room for a busy host
// cannot tell apart.
func (l *lab) wantReason(b *box, want string) {
	l.t.Helper()
	st := l.vip(b)
	if len(st.Groups) == 0 || !strings.Contains(st.Groups[0].Reason, want) {
		l.t.Errorf("%s: state reason %+v, want it to say %q", b.name, st.Groups, want)
	}
}

func (l *lab) tail(b *box) string {
	data, _ := os.ReadFile(filepath.Join(l.dir, b.name+".log"))
	s := string(data)
	if len(s) > 4000 {
		s = s[len(s)-4000:]
	}
	return s
}

func (l *lab) mac(ns, addr string) string {
	out := run(l.t, "ip", "-n", ns, "-j", "link", "show", "eth0")
	var v []struct {
		Address string `json:"address"`
	}
	json.Unmarshal([]byte(out), &v)
	if len(v) == 0 {
		l.t.Fatalf("no eth0 in %s", ns)
	}
	return v[0].Address
}

func (l *lab) neighbour() string {
	out := run(l.t, "ip", "-n", l.c, "-j", "neigh", "show", nsVIP)
	var v []struct {
		LLAddr string `json:"lladdr"`
	}
	json.Unmarshal([]byte(out), &v)
	if len(v) == 0 {
		return ""
	}
	return v[0].LLAddr
}

// prober sends a numbered probe to the VIP every 10 ms from the client
// and records who answered each.
type prober struct {
	mu     sync.Mutex
	sent   []time.Time
	answer map[uint64]probeAnswer
	stop   chan struct{}
	wg     sync.WaitGroup
}

type probeAnswer struct {
	at  time.Time
	box string
}

func (l *lab) probe() *prober { return l.probeEvery(10 * time.Millisecond) }

// probeEvery probes every d, for at most 200 s and 200,000 probes.
func (l *lab) probeEvery(d time.Duration) *prober {
	var c *net.UDPConn
	err := testenv.InNetns(l.c, func() error {
		var err error
		c, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP(nsVIP), Port: nsEchoPrt})
		return err
	})
	if err != nil {
		l.t.Fatal(err)
	}
	p := &prober{answer: map[uint64]probeAnswer{}, stop: make(chan struct{})}
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		buf := make([]byte, 64)
		for {
			n, err := c.Read(buf)
			if err != nil {
				if ne, ok := err.(net.Error); ok && !ne.Timeout() && !strings.Contains(err.Error(), "refused") {
					return
				}
				select {
				case <-p.stop:
					return
				default:
					continue
				}
			}
			if n < 8 {
				continue
			}
			seq := binary.BigEndian.Uint64(buf[:8])
			p.mu.Lock()
			if _, dup := p.answer[seq]; !dup {
				p.answer[seq] = probeAnswer{time.Now(), string(buf[8:n])}
			}
			p.mu.Unlock()
		}
	}()
	go func() {
		defer p.wg.Done()
		tk := time.NewTicker(d)
		defer tk.Stop()
		var b [8]byte
		n := min(200000, int(200*time.Second/d))
		for i := 0; i < n; i++ { // bounded
			select {
			case <-p.stop:
				return
			case <-tk.C:
			}
			p.mu.Lock()
			binary.BigEndian.PutUint64(b[:], uint64(len(p.sent)))
			p.sent = append(p.sent, time.Now())
			p.mu.Unlock()
			c.Write(b[:])
		}
	}()
	l.t.Cleanup(func() { p.close(); c.Close(); p.wg.Wait() })
	return p
}

func (p *prober) close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
}

// window summarises the probes sent in [from, to): lost count, the
// longest run of lost probes as a duration (first lost sent to first
// answered after), and which boxes answered.
func (p *prober) window(from, to time.Time) (sent, lost int, outage time.Duration, boxes []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if lim := time.Now().Add(-50 * time.Millisecond); to.After(lim) {
		to = lim // a probe this recent may still be in flight
	}
	seen := map[string]bool{}
	var gapStart time.Time
	for i, at := range p.sent {
		if at.Before(from) || !at.Before(to) {
			continue
		}
		sent++
		a, ok := p.answer[uint64(i)]
		if !ok {
			lost++
			if gapStart.IsZero() {
				gapStart = at
			}
			continue
		}
		if !gapStart.IsZero() {
			outage = max(outage, at.Sub(gapStart))
			gapStart = time.Time{}
		}
		if !seen[a.box] {
			seen[a.box] = true
			boxes = append(boxes, a.box)
		}
	}
	return
}

// firstAnswer is the time of the first probe sent at or after from that
// box answered.
func (p *prober) firstAnswer(from time.Time, box string) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, at := range p.sent {
		if a, ok := p.answer[uint64(i)]; ok && !at.Before(from) && a.box == box {
			return at
		}
	}
	return time.Time{}
}

// monitor records, from `ip -ts monitor address` in a box, when the VIP
// was added and deleted.
type monitor struct {
	mu     sync.Mutex
	events []addrEvent
	cmd    *exec.Cmd
}

type addrEvent struct {
	at  time.Time
	add bool
}

func (l *lab) monitor(ns string) *monitor {
	// Real-time priority, so that the two monitors timestamp events as
	// soon as the kernel queues them (a monitor waiting for a CPU behind
	// the daemons shows a handover as an overlap of a few hundred µs).
	args := []string{"ip", "-ts", "-n", ns, "monitor", "address"}
	if p, err := exec.LookPath("chrt"); err == nil {
		args = append([]string{p, "-f", "50"}, args...)
	}
	m := &monitor{cmd: exec.Command(args[0], args[1:]...)}
	out, err := m.cmd.StdoutPipe()
	if err != nil {
		l.t.Fatal(err)
	}
	if err := m.cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "[") || !strings.Contains(line, " inet "+nsVIP+"/") {
				continue
			}
			ts, rest, _ := strings.Cut(line[1:], "] ")
			at, err := time.ParseInLocation("2006-01-02T15:04:05.000000", ts, time.Local)
			if err != nil {
				continue
			}
			m.mu.Lock()
			m.events = append(m.events, addrEvent{at, !strings.HasPrefix(rest, "Deleted")})
			m.mu.Unlock()
		}
	}()
	l.t.Cleanup(func() { m.cmd.Process.Kill(); m.cmd.Wait(); <-done })
	return m
}

func (m *monitor) snapshot() []addrEvent {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]addrEvent(nil), m.events...)
}

// monitorSlack is the error of an overlap measured by two `ip monitor`
// processes: each stamps an event when it reads it, not when the kernel
// made it. Under load (stress-ng beside the suite) the holder's delete
// was stamped up to 1.9 ms after the new holder's add, which the new
// holder makes only once it has received the heartbeat the old one sends
// after its delete. Shorter overlaps are reported as noise.
const monitorSlack = 5 * time.Millisecond

// overlap returns the total time both boxes held the VIP, from their
// monitors' add/delete events, and in how many intervals; intervals
// shorter than monitorSlack are returned apart as noise.
func overlap(a, b []addrEvent, end time.Time) (time.Duration, int, []time.Duration) {
	intervals := func(ev []addrEvent) [][2]time.Time {
		var out [][2]time.Time
		var start time.Time
		for _, e := range ev {
			if e.add && start.IsZero() {
				start = e.at
			} else if !e.add && !start.IsZero() {
				out = append(out, [2]time.Time{start, e.at})
				start = time.Time{}
			}
		}
		if !start.IsZero() {
			out = append(out, [2]time.Time{start, end})
		}
		return out
	}
	var total time.Duration
	var noise []time.Duration
	n := 0
	for _, x := range intervals(a) {
		for _, y := range intervals(b) {
			s, e := x[0], x[1]
			if y[0].After(s) {
				s = y[0]
			}
			if y[1].Before(e) {
				e = y[1]
			}
			switch d := e.Sub(s); {
			case d >= monitorSlack:
				total += d
				n++
			case d > 0:
				noise = append(noise, d)
			}
		}
	}
	return total, n, noise
}

func (l *lab) ctl(b *box, args ...string) string {
	l.t.Helper()
	out, err := exec.Command(sipedgeBinary(l.t), append([]string{"ctl", "-config", b.cfg}, args...)...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("ctl %v on %s: %v\n%s", args, b.name, err, out)
	}
	return string(out)
}

// handover checks an ordered handover that began at `at`: want answers
// within max, and no probe is lost from at to now (after a settle).
func (l *lab) handover(p *prober, what string, at time.Time, want string, max time.Duration) {
	l.t.Helper()
	time.Sleep(300 * time.Millisecond)
	first := p.firstAnswer(at, want)
	_, lost, outage, boxes := p.window(at, time.Now())
	l.t.Logf("%s: %s answers %v after; %d probes lost (outage %v), answered by %v", what, want, first.Sub(at).Round(time.Millisecond), lost, outage, boxes)
	if first.IsZero() || first.Sub(at) > max {
		l.t.Errorf("%s: %s answered at %v, want within %v", what, want, first.Sub(at), max)
	}
	if lost != 0 {
		l.t.Errorf("%s lost %d probes (outage %v), want none", what, lost, outage)
	}
}

func TestNetnsFailover(t *testing.T) {
	testenv.MustHaveNetns(t)
	testenv.Short(t, "runs two daemons in network namespaces for about 20 s")
	sipedgeBinary(t)
	l := newLab(t)
	l.services(l.a, "A")
	l.services(l.b, "B")
	macA, macB := l.mac(l.a, ""), l.mac(l.b, "")
	monA, monB := l.monitor(l.a), l.monitor(l.b)
	time.Sleep(200 * time.Millisecond) // monitors subscribed

	A := &box{name: "edge-a", ns: l.a, cfg: l.config("edge-a", "192.0.2.11", "192.0.2.12", "main", 150)}
	B := &box{name: "edge-b", ns: l.b, cfg: l.config("edge-b", "192.0.2.12", "192.0.2.11", "backup", 100)}
	// A crash left the VIP on B: it must go before anything else. B
	// starts first; A joins within B's initdead and is preferred.
	run(t, "ip", "-n", l.b, "addr", "add", nsVIP+"/24", "dev", "eth0")
	time.Sleep(50 * time.Millisecond)
	l.start(B)
	l.waitState(B, "init", 5*time.Second)
	if ev := monB.snapshot(); len(ev) != 2 || !ev[0].add || ev[1].add {
		t.Fatalf("B's stale VIP not removed at start: monitor %v", ev)
	}
	l.start(A)
	l.waitState(A, "master", 5*time.Second)
	l.waitState(B, "backup", 5*time.Second)
	if st := l.vip(B); len(st.Groups) == 0 || st.Groups[0].Holder != "edge-a" {
		t.Fatalf("B's view: %+v", st)
	}
	p := l.probe()
	time.Sleep(500 * time.Millisecond)

	// Forged heartbeats, wrong key, claiming A stopped (B would take at
	// once) and B preferred (A would release), plus junk: from the
	// client, which is no peer (dropped unread: unknown_source), and from
	// each box's own address to the other (decoded, bad MAC or
	// malformed).
	forgeStart := time.Now()
	sock := func(ns string) *net.UDPConn {
		var c *net.UDPConn
		if err := testenv.InNetns(ns, func() error {
			var err error
			c, err = net.ListenUDP("udp4", nil)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	fc, fa, fb := sock(l.c), sock(l.a), sock(l.b) // client; A's and B's addresses
	toA := &net.UDPAddr{IP: net.ParseIP("192.0.2.11"), Port: 694}
	toB := &net.UDPAddr{IP: net.ParseIP("192.0.2.12"), Port: 694}
	wrong := []byte("this is not the cluster key!!!!!")
	for i := 0; i < 50; i++ {
		now := time.Now()
		stopA, _ := Encode(&Message{Node: "edge-a", Seq: uint64(now.UnixNano()) + 1<<40, Time: now, Groups: []GroupStatus{{Name: "db", State: StateStopped}}}, wrong)
		prefB, _ := Encode(&Message{Node: "edge-b", Seq: uint64(now.UnixNano()) + 1<<40, Time: now, Groups: []GroupStatus{{Name: "db", State: StateMaster, Priority: 254}}}, wrong)
		garbage := []byte("SEHB\x01garbage")
		for _, c := range []*net.UDPConn{fc, fa} {
			c.WriteToUDP(stopA, toB)
		}
		for _, c := range []*net.UDPConn{fc, fb} {
			c.WriteToUDP(prefB, toA)
			c.WriteToUDP(garbage, toA)
		}
		time.Sleep(20 * time.Millisecond)
	}
	fc.Close()
	fa.Close()
	fb.Close()
	time.Sleep(300 * time.Millisecond)
	if sa, sb := l.state(A), l.state(B); sa != "master" || sb != "backup" {
		t.Fatalf("after forged heartbeats: A %s, B %s", sa, sb)
	}
	if r := l.vip(B).Rejected; r[RejectUnknownSource] < 50 || r[RejectBadMAC] < 50 {
		t.Errorf("B rejections %v, want >= 50 unknown_source (client) and bad_mac (from A's address)", r)
	}
	if r := l.vip(A).Rejected; r[RejectUnknownSource] < 100 || r[RejectBadMAC] < 50 || r[RejectMalformed] < 50 {
		t.Errorf("A rejections %v, want >= 100 unknown_source (client), >= 50 bad_mac and malformed (from B's address)", r)
	}
	if _, lost, _, boxes := p.window(forgeStart, time.Now()); lost != 0 || len(boxes) != 1 || boxes[0] != "A" {
		t.Errorf("during forged heartbeats: %d probes lost, answered by %v", lost, boxes)
	}

	// kill -9 A before any handover (no relay window open on A); the
	// harness removes its VIP as PID 1 does on the appliance when the
	// daemon dies.
	garpsB0 := l.vip(B).Groups[0].GARPs
	killAt := time.Now()
	l.stop(A, syscall.SIGKILL)
	exec.Command("ip", "-n", l.a, "addr", "del", nsVIP+"/24", "dev", "eth0").Run()
	l.waitState(B, "master", 3*time.Second)
	time.Sleep(300 * time.Millisecond)
	firstB := p.firstAnswer(killAt, "B")
	if firstB.IsZero() {
		t.Fatal("B never answered after takeover")
	}
	takeover := firstB.Sub(killAt)
	_, lostKill, outageKill, _ := p.window(killAt.Add(-50*time.Millisecond), time.Now())
	t.Logf("takeover after kill -9: first probe answered by B %v after the kill (outage %v, %d probes lost)", takeover.Round(time.Millisecond), outageKill.Round(time.Millisecond), lostKill)
	// The figure is logged; the bound only leaves a busy host room
	// (deadtime 300 ms + 1 s), the reason says it was the deadtime.
	if takeover > 1300*time.Millisecond {
		t.Errorf("takeover took %v, want about the deadtime (300 ms; 1.3 s at most on a busy host)", takeover)
	}
	l.wantReason(B, "not heard for")
	if n := l.neighbour(); n != macB {
		t.Errorf("client's neighbour entry for the VIP %q, want B's MAC %s", n, macB)
	}
	garpsB := l.vip(B).Groups[0].GARPs - garpsB0

	// A comes back: failback after stable_for, no probe lost.
	backAt := time.Now()
	A.cmd = nil
	l.start(A)
	l.waitState(A, "master", 5*time.Second)
	l.handover(p, "failback", backAt, "A", 3*time.Second)
	if n := l.neighbour(); n != macA {
		t.Errorf("client's neighbour entry %q after failback, want A's MAC %s", n, macA)
	}
	garpsA := l.vip(A).Groups[0].GARPs // A restarted: its count starts at 0

	// Clean stop of A: B takes at once, no probe lost.
	stopAt := time.Now()
	l.stop(A, syscall.SIGTERM)
	t.Logf("clean stop: A exited in %v", time.Since(stopAt).Round(time.Millisecond))
	l.waitState(B, "master", 2*time.Second)
	l.wantReason(B, "stopped") // at once, not at the deadtime
	l.handover(p, "clean stop", stopAt, "B", time.Second)
	if n := l.neighbour(); n != macB {
		t.Errorf("client's neighbour entry %q after clean stop, want B's MAC %s", n, macB)
	}
	backAt = time.Now()
	A.cmd = nil
	l.start(A)
	l.waitState(A, "master", 5*time.Second)
	l.handover(p, "second failback", backAt, "A", 3*time.Second)

	// Operator handovers back and forth (vip takeover on the other box),
	// 200 ms apart: both boxes' relay windows are open at once.
	const handovers = 10
	opStart := time.Now()
	for i := 0; i < handovers; i++ {
		to, want := B, "B"
		if i%2 == 1 {
			to, want = A, "A"
		}
		at := time.Now()
		l.ctl(to, "vip", "takeover", "db")
		time.Sleep(200 * time.Millisecond)
		if first := p.firstAnswer(at, want); first.IsZero() {
			t.Fatalf("handover %d: %s never answered", i, want)
		}
	}
	time.Sleep(100 * time.Millisecond)
	_, lostOp, outageOp, _ := p.window(opStart, time.Now())
	t.Logf("%d operator handovers: %d probes lost, longest outage %v", handovers, lostOp, outageOp)
	if lostOp != 0 {
		t.Errorf("%d operator handovers lost %d probes (outage %v), want none", handovers, lostOp, outageOp)
	}
	l.waitState(A, "master", time.Second)

	// The operator's takeover pin on A survives a restart: after a clean
	// stop A comes back preferred at once (no stable_for wait), and ctl
	// vip shows the pin until vip auto ends it.
	if st := l.vip(A); !st.Groups[0].Pinned || st.Groups[0].PinSince == nil {
		t.Errorf("A not pinned after vip takeover: %+v", st.Groups[0])
	}
	stopAt = time.Now()
	l.stop(A, syscall.SIGTERM)
	l.waitState(B, "master", 2*time.Second)
	l.wantReason(B, "stopped")
	l.handover(p, "clean stop (pinned)", stopAt, "B", time.Second)
	backAt = time.Now()
	A.cmd = nil
	l.start(A)
	l.waitState(A, "master", 5*time.Second)
	l.wantReason(A, "operator") // at once, not after stable_for
	l.handover(p, "return of the pinned box", backAt, "A", 3*time.Second)
	if out := l.ctl(A, "vip"); !strings.Contains(out, "pin: taken over by operator") {
		t.Errorf("ctl vip on A after restart does not show the pin:\n%s", out)
	}
	if out := l.ctl(A, "vip", "auto", "db"); strings.Contains(out, "pin:") {
		t.Errorf("ctl vip auto left a pin:\n%s", out)
	}
	if st := l.vip(A); st.Groups[0].Pinned || st.Groups[0].Held || l.state(A) != "master" {
		t.Errorf("after vip auto: %+v", st.Groups[0])
	}

	p.close()
	time.Sleep(100 * time.Millisecond)
	ov, n, noise := overlap(monA.snapshot(), monB.snapshot(), time.Now())
	t.Logf("ip monitor: A %d VIP events, B %d; GARPs sent: B at takeover %d, A at failback %d (count 3 + repeat 3); overlaps under %v (the monitors' error): %v", len(monA.snapshot()), len(monB.snapshot()), garpsB, garpsA, monitorSlack, noise)
	if len(monA.snapshot()) < 10 || len(monB.snapshot()) < 10 {
		t.Errorf("ip monitor saw too few VIP changes (A %v, B %v): is it working?", monA.snapshot(), monB.snapshot())
	}
	if ov > 0 {
		t.Errorf("both boxes held the VIP together %d times, %v in all", n, ov)
	}
	if garpsB != 3 && garpsB != 6 {
		t.Errorf("B sent %d GARPs, want 3 then 3 more", garpsB)
	}
	l.stop(A, syscall.SIGTERM)
	l.stop(B, syscall.SIGTERM)
	// Both stopped cleanly: every relay window is closed and the sysctls
	// and rules are as before.
	for _, ns := range []string{l.a, l.b} {
		if rules := run(t, "ip", "-n", ns, "rule", "show"); strings.Contains(rules, "32100") || strings.Contains(rules, "32101") {
			t.Errorf("relay rules left in %s:\n%s", ns, rules)
		}
		if v := strings.TrimSpace(run(t, "ip", "netns", "exec", ns, "cat", "/proc/sys/net/ipv4/conf/eth0/forwarding")); v != "0" {
			t.Errorf("eth0 forwarding in %s = %s after stop, want 0", ns, v)
		}
	}
	if t.Failed() || os.Getenv("SIPEDGE_TEST_LOGS") != "" {
		t.Logf("ip monitor:\n%s", l.timeline(monA, monB))
		t.Logf("state changes:\n%s", l.changes(A, B))
	}
}

// timeline lists both monitors' VIP events in time order.
func (l *lab) timeline(monA, monB *monitor) string {
	var evs []string
	for _, m := range []struct {
		n  string
		ev []addrEvent
	}{{"A", monA.snapshot()}, {"B", monB.snapshot()}} {
		for _, e := range m.ev {
			what := "del"
			if e.add {
				what = "add"
			}
			evs = append(evs, fmt.Sprintf("%s %s %s", e.at.Format("15:04:05.000000"), m.n, what))
		}
	}
	sort.Strings(evs)
	return strings.Join(evs, "\n")
}

// changes lists the boxes' VIP state changes and warnings from their logs.
func (l *lab) changes(boxes ...*box) string {
	var out []string
	for _, b := range boxes {
		data, _ := os.ReadFile(filepath.Join(l.dir, b.name+".log"))
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, `"VIP state change"`) || strings.Contains(line, "split brain") || strings.Contains(line, "woke late") {
				out = append(out, b.name+" "+line)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return jsonTime(out[i]) < jsonTime(out[j]) })
	return strings.Join(out, "\n")
}

func jsonTime(line string) string {
	_, rest, _ := strings.Cut(line, `"time":"`)
	ts, _, _ := strings.Cut(rest, `"`)
	return ts
}
