package hal

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
)

// Relayer lets a box relay IPv4 packets that still arrive for an address
// it has just given to another box on the same LAN (a client whose ARP
// cache still names this box): with forwarding on for the interface, the
// kernel routes such a packet back out of the interface it came in on,
// holds it while it resolves the address by ARP, and delivers it to the
// new holder. Policy rules confine that forwarding to the address: every
// other packet that arrives on the interface and is not for a local
// address is dropped, as it is with forwarding off.
//
// Callers pair the rules with the interface's sysctls (forwarding on,
// send_redirects off) and restore the sysctls themselves, so that they
// can record the original values where a crash does not lose them.
type Relayer interface {
	// Sysctl reads a value under /proc/sys, e.g.
	// "net/ipv4/conf/eth0/forwarding".
	Sysctl(name string) (string, error)
	// SetSysctl writes one.
	SetSysctl(name, value string) error
	// AddRelayRules adds the policy rules: packets arriving on ifname for
	// addr are routed by the main table; any other packet arriving on
	// ifname that is not local is dropped. Adding rules that exist is not
	// an error.
	AddRelayRules(ifname string, addr netip.Addr) error
	// DelRelayRules removes addr's rule and, if last, ifname's drop rule.
	// It reports whether any of them existed; absent rules are not an
	// error.
	DelRelayRules(ifname string, addr netip.Addr, last bool) (existed bool, err error)
	// ForgetNeighbor removes addr's entry from ifname's ARP cache (an
	// absent entry is not an error), so the next packet for addr is held
	// until whoever holds it now answers, not sent to an earlier holder.
	ForgetNeighbor(ifname string, addr netip.Addr) error
}

// Relay rule priorities: after the local table (0), before main (32766).
const (
	RelayRulePriority     = 32100 // iif IF to ADDR/32 lookup main
	RelayDropRulePriority = 32101 // iif IF blackhole
)

// checkSysctlName refuses names that could leave /proc/sys.
func checkSysctlName(name string) error {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "..") || strings.ContainsAny(name, "\x00\n") {
		return fmt.Errorf("hal: bad sysctl name %q", name)
	}
	return nil
}

// FakeRelayer is an in-memory Relayer for unit tests: sysctls in a map
// (absent names read as an error), rules as a set; FailNext-style error
// injection per method.
type FakeRelayer struct {
	mu      sync.Mutex
	sysctls map[string]string
	rules   map[string]bool
	fail    map[string]error
	log     []string
}

// NewFakeRelayer returns a FakeRelayer with the given sysctl values.
func NewFakeRelayer(sysctls map[string]string) *FakeRelayer {
	f := &FakeRelayer{sysctls: map[string]string{}, rules: map[string]bool{}, fail: map[string]error{}}
	for k, v := range sysctls {
		f.sysctls[k] = v
	}
	return f
}

var _ Relayer = (*FakeRelayer)(nil)

// FailNext makes the next call of method return err.
func (f *FakeRelayer) FailNext(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[method] = err
}

func (f *FakeRelayer) injected(method string) error {
	if err, ok := f.fail[method]; ok {
		delete(f.fail, method)
		return err
	}
	return nil
}

// Sysctl implements Relayer.
func (f *FakeRelayer) Sysctl(name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("Sysctl"); err != nil {
		return "", err
	}
	v, ok := f.sysctls[name]
	if !ok {
		return "", fmt.Errorf("hal: sysctl %s: no such file", name)
	}
	return v, nil
}

// SetSysctl implements Relayer.
func (f *FakeRelayer) SetSysctl(name, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("SetSysctl"); err != nil {
		return err
	}
	if _, ok := f.sysctls[name]; !ok {
		return fmt.Errorf("hal: sysctl %s: no such file", name)
	}
	f.sysctls[name] = value
	f.log = append(f.log, "set "+name+"="+value)
	return nil
}

func relayRuleKey(ifname string, addr netip.Addr) string { return ifname + " to " + addr.String() }
func relayDropKey(ifname string) string                  { return ifname + " drop" }

// AddRelayRules implements Relayer.
func (f *FakeRelayer) AddRelayRules(ifname string, addr netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("AddRelayRules"); err != nil {
		return err
	}
	f.rules[relayRuleKey(ifname, addr)] = true
	f.rules[relayDropKey(ifname)] = true
	f.log = append(f.log, "rules "+ifname+" "+addr.String())
	return nil
}

// DelRelayRules implements Relayer.
func (f *FakeRelayer) DelRelayRules(ifname string, addr netip.Addr, last bool) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("DelRelayRules"); err != nil {
		return false, err
	}
	existed := f.rules[relayRuleKey(ifname, addr)]
	delete(f.rules, relayRuleKey(ifname, addr))
	if last {
		existed = existed || f.rules[relayDropKey(ifname)]
		delete(f.rules, relayDropKey(ifname))
	}
	if existed {
		f.log = append(f.log, "del rules "+ifname+" "+addr.String())
	}
	return existed, nil
}

// ForgetNeighbor implements Relayer.
func (f *FakeRelayer) ForgetNeighbor(ifname string, addr netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("ForgetNeighbor"); err != nil {
		return err
	}
	f.log = append(f.log, "forget "+ifname+" "+addr.String())
	return nil
}

// Values returns a copy of the sysctls.
func (f *FakeRelayer) Values() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	for k, v := range f.sysctls {
		out[k] = v
	}
	return out
}

// Rules lists the rules present, sorted ("eth0 to 192.0.2.10", "eth0 drop").
func (f *FakeRelayer) Rules() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k := range f.rules {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Log returns the changes made, in order.
func (f *FakeRelayer) Log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}
