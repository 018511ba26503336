package balancer

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/sipedge/sipedge/daemon/resolve"
	"github.com/sipedge/sipedge/daemon/resolve/dnstest"
)

// TestCoresByDNSName: a Core given by DNS name is resolved by SRV from a
// DNS server of the test, each target a Core of its own grouped under
// the name; new calls go to the lowest SRV priority; a change of the
// records changes the pool; a name that stops resolving keeps its
// Cores and says it is stale.
func TestCoresByDNSName(t *testing.T) {
	dnsSrv := dnstest.New(t)
	var ports [3]uint16
	l := newTxLab(t, 3, func(o *Options) {
		r, err := resolve.New(resolve.Options{Servers: []netip.AddrPort{dnsSrv.Addr()}, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range o.Cores {
			ports[i] = netip.MustParseAddrPort(c.Address).Port()
		}
		dnsSrv.Set(t,
			fmt.Sprintf("_sip._udp.cores.test. 1 IN SRV 10 1 %d a.cores.test.", ports[0]),
			fmt.Sprintf("_sip._udp.cores.test. 1 IN SRV 20 1 %d b.cores.test.", ports[1]),
			"a.cores.test. 1 IN A 127.0.0.1",
			"b.cores.test. 1 IN A 127.0.0.1",
			"c.cores.test. 1 IN A 127.0.0.1",
		)
		o.Cores = []CoreConfig{{Name: "grp", Address: "cores.test"}}
		o.DNS, o.DNSMinTTL = r, 100*time.Millisecond
	})
	member := func(i int) string { return fmt.Sprintf("grp/127.0.0.1:%d", ports[i]) }
	waitMembers := func(want ...string) {
		t.Helper()
		slices.Sort(want)
		var got []string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			got = nil
			for _, c := range l.b.Cores() {
				if c.Group == "grp" {
					got = append(got, c.Name)
				}
			}
			slices.Sort(got)
			if slices.Equal(got, want) {
				return
			}
		}
		t.Fatalf("the group's Cores are %v, want %v", got, want)
	}
	callTo := func(id string) int {
		t.Helper()
		l.send(l.caller, l.invite(id))
		i, _ := l.coreRecv(2*time.Second, "INVITE "+id, func(m sip.Message) bool {
			r, ok := m.(*sip.Request)
			return ok && r.Method == sip.INVITE && r.CallID().Value() == id
		})
		return i
	}

	waitMembers(member(0), member(1))
	if cfgs := l.b.CoreConfigs(); len(cfgs) != 1 || cfgs[0].Address != "cores.test" {
		t.Fatalf("CoreConfigs %+v, want the group's configuration alone", cfgs)
	}
	for k := range 4 {
		if i := callTo(fmt.Sprintf("dns-a%d", k)); i != 0 {
			t.Fatalf("call %d went to Core %d, want the SRV priority 10 target (0)", k, i)
		}
	}
	if err := l.b.RemoveCore(member(0)); err == nil {
		t.Fatal("a Core of a DNS group was removed on its own")
	}
	if err := l.b.DisableCore(member(0)); err != nil {
		t.Fatal(err)
	}
	if i := callTo("dns-b"); i != 1 {
		t.Fatalf("with priority 10 disabled the call went to Core %d, want the priority 20 target (1)", i)
	}

	// The records change: a goes, c comes, b and c share a priority.
	dnsSrv.Set(t,
		fmt.Sprintf("_sip._udp.cores.test. 1 IN SRV 5 1 %d b.cores.test.", ports[1]),
		fmt.Sprintf("_sip._udp.cores.test. 1 IN SRV 5 3 %d c.cores.test.", ports[2]))
	waitMembers(member(1), member(2))
	for _, c := range l.b.Cores() {
		if c.Group == "grp" && (c.Rank != 0 || (c.Name == member(2)) != (c.Weight == 3)) {
			t.Fatalf("Core %s rank %d weight %d, want rank 0 and the SRV weight", c.Name, c.Rank, c.Weight)
		}
	}

	// The name stops resolving: the Cores stay, the group is stale.
	dnsSrv.Fail(true)
	var g CoreGroupStatus
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !g.Stale; time.Sleep(20 * time.Millisecond) {
		g = l.b.CoreGroups()[0]
	}
	if !g.Stale || g.LastError == "" || len(g.Cores) != 2 {
		t.Fatalf("after SERVFAIL the group is %+v, want stale with its 2 Cores and the error", g)
	}
	waitMembers(member(1), member(2))
	l.send(l.caller, l.invite("dns-c"))
	l.coreRecv(2*time.Second, "a call while the name is stale", isRequest(sip.INVITE))

	if err := l.b.RemoveCore("grp"); err != nil {
		t.Fatal(err)
	}
	waitMembers()
}

// TestCoreByNameWithoutDNS: a Core given by name with no DNS servers is
// a clear error at start, not a silent Core-less balancer.
func TestCoreByNameWithoutDNS(t *testing.T) {
	_, err := New(Options{Listen: []string{"udp:127.0.0.1:5060"}, Cores: []CoreConfig{{Name: "grp", Address: "cores.example.net"}}, Logger: testLogger(t)})
	if err == nil {
		t.Fatal("a Core given by name started without a resolver")
	}
	t.Log(err)
}

// TestCoresByDNSNameEndToEnd: the daemon with a Core given by DNS name
// (network.dns the test's server) resolves it to the two SIPp Cores of
// its SRV records, probes each, and completes calls on both.
func TestCoresByDNSNameEndToEnd(t *testing.T) {
	dnsSrv := dnstest.New(t)
	var ports []uint16
	l := newLab(t, 2, "core_uas.xml", func(o *Options) {
		r, err := resolve.New(resolve.Options{Servers: []netip.AddrPort{dnsSrv.Addr()}})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range o.Cores {
			p := netip.MustParseAddrPort(c.Address).Port()
			ports = append(ports, p)
		}
		dnsSrv.Set(t,
			fmt.Sprintf("_sip._udp.cores.test. 30 IN SRV 10 1 %d core.test.", ports[0]),
			fmt.Sprintf("_sip._udp.cores.test. 30 IN SRV 10 1 %d core.test.", ports[1]),
			"core.test. 30 IN A 127.0.0.1")
		o.Cores = []CoreConfig{{Name: "grp", Address: "cores.test"}}
		o.DNS = r
	})
	var members []string
	for _, p := range ports {
		members = append(members, fmt.Sprintf("grp/127.0.0.1:%d", p))
	}
	l.waitProbed(15*time.Second, members...)
	ok, failed := l.runCalls("caller_uac.xml", 40, 40, 50)
	if ok != 40 || failed != 0 {
		t.Fatalf("%d ok, %d failed; want 40 ok", ok, failed)
	}
	for _, c := range l.tgt.cores() {
		if c.Group != "grp" || c.Routed == 0 {
			t.Errorf("Core %s (group %q) routed %d calls: want both targets used", c.Name, c.Group, c.Routed)
		}
	}
}
