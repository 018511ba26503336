package failover

import (
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sipedge/sipedge/hal"
)

// relayNet is a Network that can relay: hal.Fake for addresses and
// announcements, hal.FakeRelayer for sysctls and rules; it records the
// order of the operations that matter for a handover.
type relayNet struct {
	*hal.Fake
	*hal.FakeRelayer
	n *simNode
}

func (r *relayNet) DelAddress(ifname string, p netip.Prefix) error {
	r.n.ops = append(r.n.ops, "del "+p.String())
	return r.Fake.DelAddress(ifname, p)
}

func (r *relayNet) SetSysctl(name, value string) error {
	r.n.ops = append(r.n.ops, "set "+name+"="+value)
	return r.FakeRelayer.SetSysctl(name, value)
}

func (r *relayNet) AddRelayRules(ifname string, addr netip.Addr) error {
	r.n.ops = append(r.n.ops, "rules")
	return r.FakeRelayer.AddRelayRules(ifname, addr)
}

// memPersist is an in-memory Persist; fail makes Save fail.
type memPersist struct {
	data map[string][]byte
	fail error
}

func (p *memPersist) Load(key string, v any) (bool, error) {
	b, ok := p.data[key]
	if !ok {
		return false, nil
	}
	return true, json.Unmarshal(b, v)
}

func (p *memPersist) Save(key string, v any) error {
	if p.fail != nil {
		return p.fail
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	p.data[key] = b
	return nil
}

func defaultSysctls() map[string]string {
	return map[string]string{
		"net/ipv4/conf/eth0/forwarding":     "0",
		"net/ipv4/conf/eth0/send_redirects": "1",
		"net/ipv4/conf/all/send_redirects":  "1",
	}
}

// relayPair is pair() with relay-capable HALs and persistence.
func relayPair(t *testing.T, sysA map[string]string) (*sim, *simNode, *simNode) {
	s := newSim(t)
	a, b := s.add("edge-a", groupOpts(RoleMain, 150)), s.add("edge-b", groupOpts(RoleBackup, 100))
	a.relay, b.relay = hal.NewFakeRelayer(sysA), hal.NewFakeRelayer(defaultSysctls())
	for _, n := range []*simNode{a, b} {
		n.opt.Persist = &memPersist{data: map[string][]byte{}}
	}
	s.boot(a)
	s.boot(b)
	s.run(200 * time.Millisecond)
	s.wantState(a, "sip", StateMaster)
	s.wantHolders("edge-a")
	return s, a, b
}

func TestRelayWindowAtRelease(t *testing.T) {
	s, a, b := relayPair(t, defaultSysctls())
	a.ops = nil
	if err := a.m.Release("sip"); err != nil {
		t.Fatal(err)
	}
	s.run(50 * time.Millisecond)
	s.wantHolders("edge-b")
	// Rules before any sysctl, forwarding last, all before the delete.
	want := []string{"rules",
		"set net/ipv4/conf/eth0/send_redirects=0", "set net/ipv4/conf/all/send_redirects=0",
		"set net/ipv4/conf/eth0/forwarding=1", "del " + testVIP.String()}
	if !slices.Equal(a.ops, want) {
		t.Fatalf("release operations:\n got %q\nwant %q", a.ops, want)
	}
	if r := a.relay.Rules(); !slices.Equal(r, []string{"eth0 drop", "eth0 to 192.0.2.10"}) {
		t.Errorf("rules during the window: %v", r)
	}
	if log := a.relay.Log(); !slices.Contains(log, "forget eth0 192.0.2.10") {
		t.Errorf("neighbour entry not forgotten: %v", log)
	}
	if !a.m.Status().Groups[0].Relaying {
		t.Error("status does not show the relay")
	}
	var rec relayRecord
	if found, _ := a.opt.Persist.Load(PersistRelay, &rec); !found || rec.Sysctls["net/ipv4/conf/eth0/forwarding"] != "0" {
		t.Errorf("originals not recorded: %v %+v", found, rec)
	}
	// The window ends after DefaultRelayFor: values back, rules gone.
	s.run(DefaultRelayFor - 100*time.Millisecond)
	if a.relay.Values()["net/ipv4/conf/eth0/forwarding"] != "1" {
		t.Error("window closed early")
	}
	s.run(200 * time.Millisecond)
	if v := a.relay.Values(); !sameMap(v, defaultSysctls()) {
		t.Errorf("sysctls after the window: %v", v)
	}
	if r := a.relay.Rules(); len(r) != 0 {
		t.Errorf("rules after the window: %v", r)
	}
	if a.m.Status().Groups[0].Relaying {
		t.Error("status still shows the relay")
	}
	// The taking side never relays.
	if log := b.relay.Log(); len(log) != 0 {
		t.Errorf("B changed %v", log)
	}
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestRelayCleanStopRestores(t *testing.T) {
	s, a, _ := relayPair(t, defaultSysctls())
	a.m.shutdown(s.clock.now)
	s.deliver()
	if a.relay.Values()["net/ipv4/conf/eth0/forwarding"] != "1" {
		t.Fatal("no relay window at a clean stop")
	}
	a.m.mu.Lock()
	a.m.relay.closeAll()
	a.m.mu.Unlock()
	if v := a.relay.Values(); !sameMap(v, defaultSysctls()) || len(a.relay.Rules()) != 0 {
		t.Errorf("after stop: %v, rules %v", v, a.relay.Rules())
	}
}

func TestRelayCrashRecovery(t *testing.T) {
	s, a, _ := relayPair(t, defaultSysctls())
	if err := a.m.Release("sip"); err != nil {
		t.Fatal(err)
	}
	s.run(50 * time.Millisecond)
	// kill -9 inside the window: rules and sysctls stay as they were.
	s.kill(a, false)
	if a.relay.Values()["net/ipv4/conf/eth0/forwarding"] != "1" || len(a.relay.Rules()) == 0 {
		t.Fatal("the window was not open at the crash")
	}
	s.boot(a)
	if v := a.relay.Values(); !sameMap(v, defaultSysctls()) {
		t.Errorf("after restart: %v", v)
	}
	if r := a.relay.Rules(); len(r) != 0 {
		t.Errorf("rules after restart: %v", r)
	}
}

func TestRelayNotOnRouter(t *testing.T) {
	sys := defaultSysctls()
	sys["net/ipv4/conf/eth0/forwarding"] = "1"
	s, a, _ := relayPair(t, sys)
	if err := a.m.Release("sip"); err != nil {
		t.Fatal(err)
	}
	s.run(50 * time.Millisecond)
	s.wantHolders("edge-b")
	if r := a.relay.Rules(); len(r) != 0 {
		t.Errorf("a router box got relay rules %v (they would drop what it routes)", r)
	}
	if v := a.relay.Values(); !sameMap(v, sys) {
		t.Errorf("a router box's sysctls changed: %v", v)
	}
}

func TestRelayFailureDoesNotBlockHandover(t *testing.T) {
	s, a, _ := relayPair(t, defaultSysctls())
	a.relay.FailNext("SetSysctl", errors.New("read-only /proc"))
	if err := a.m.Release("sip"); err != nil {
		t.Fatal(err)
	}
	s.run(50 * time.Millisecond)
	s.wantHolders("edge-b")
	if v := a.relay.Values(); !sameMap(v, defaultSysctls()) || len(a.relay.Rules()) != 0 {
		t.Errorf("a failed window was not undone: %v, rules %v", v, a.relay.Rules())
	}
}

func TestPinsPersist(t *testing.T) {
	s, a, b := relayPair(t, defaultSysctls())
	if err := b.m.Takeover("sip"); err != nil {
		t.Fatal(err)
	}
	s.run(100 * time.Millisecond)
	s.wantHolders("edge-b")
	// B restarts (clean stop): A takes over, B comes back pinned and takes
	// the VIP back at once, without a failback wait.
	s.stop(b)
	s.run(100 * time.Millisecond)
	s.wantHolders("edge-a")
	s.boot(b)
	if st := b.m.Status().Groups[0]; !st.Pinned || st.PinSince == nil {
		t.Fatalf("B's takeover pin lost in the restart: %+v", st)
	}
	if d, ok := s.until(500*time.Millisecond, func() bool { return b.state("sip") == StateMaster }); !ok {
		t.Fatalf("pinned B not master %v after its restart", d)
	}
	// vip auto: no pin persisted; failback returns the VIP to A.
	if err := b.m.Auto("sip"); err != nil {
		t.Fatal(err)
	}
	pins := map[string]Pin{}
	b.opt.Persist.Load(PersistPins, &pins)
	if len(pins) != 0 {
		t.Errorf("pins after vip auto: %v", pins)
	}
	s.run(1500 * time.Millisecond)
	s.wantHolders("edge-a")
	// A release pin too, and a failing store refuses the command.
	if err := a.m.Release("sip"); err != nil {
		t.Fatal(err)
	}
	a.opt.Persist.Load(PersistPins, &pins)
	if pins["sip"].Kind != PinReleased {
		t.Errorf("release pin not saved: %v", pins)
	}
	a.opt.Persist.(*memPersist).fail = errors.New("disk full")
	if err := a.m.Takeover("sip"); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Takeover with a failing store = %v", err)
	}
	if st := a.m.Status().Groups[0]; !st.Held || st.Pinned {
		t.Errorf("a refused takeover changed the pin: %+v", st)
	}
}
