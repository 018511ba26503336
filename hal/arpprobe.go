package hal

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
)

// ARPProber asks the layer-2 segment of an interface who is there,
// without claiming anything: the VIP placement check (daemon/failover)
// uses it to learn whether the peer box shares the VIP's segment.
type ARPProber interface {
	// ProbeARP sends RFC 5227 ARP probes for target on ifname (sender
	// protocol address 0.0.0.0: no neighbour cache learns anything from
	// them, and no address is announced) until ctx ends or a box
	// answers; it returns the answering hardware address.
	ProbeARP(ctx context.Context, ifname string, target netip.Addr) (net.HardwareAddr, error)
	// WatchGARP calls fn with the sender of every gratuitous ARP for ip
	// heard on ifname (sender and target protocol address ip) that this
	// box did not send, until ctx ends.
	WatchGARP(ctx context.Context, ifname string, ip netip.Addr, fn func(net.HardwareAddr)) error
}

// ErrNoAnswer: nobody answered an ARP probe before the deadline.
var ErrNoAnswer = errors.New("no ARP answer")

// FakeARP is an in-memory ARPProber: Answer says who answers a probe on
// an interface, Hear delivers a gratuitous ARP to the watchers.
type FakeARP struct {
	mu       sync.Mutex
	answers  map[string]net.HardwareAddr // ifname/ip -> mac
	watchers map[string][]func(net.HardwareAddr)
	probes   int
}

// NewFakeARP returns a FakeARP where nobody answers.
func NewFakeARP() *FakeARP {
	return &FakeARP{answers: map[string]net.HardwareAddr{}, watchers: map[string][]func(net.HardwareAddr){}}
}

func fakeKey(ifname string, ip netip.Addr) string { return ifname + "/" + ip.String() }

// Answer makes target answer probes on ifname with mac (nil: silence).
func (f *FakeARP) Answer(ifname string, target netip.Addr, mac net.HardwareAddr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if mac == nil {
		delete(f.answers, fakeKey(ifname, target))
		return
	}
	f.answers[fakeKey(ifname, target)] = mac
}

// Hear delivers a gratuitous ARP for ip from mac on ifname.
func (f *FakeARP) Hear(ifname string, ip netip.Addr, mac net.HardwareAddr) {
	f.mu.Lock()
	ws := slices.Clone(f.watchers[fakeKey(ifname, ip)])
	f.mu.Unlock()
	for _, fn := range ws {
		fn(mac)
	}
}

// Watchers counts the WatchGARP calls running for ip on ifname.
func (f *FakeARP) Watchers(ifname string, ip netip.Addr) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.watchers[fakeKey(ifname, ip)])
}

// Probes counts the probes sent.
func (f *FakeARP) Probes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.probes
}

func (f *FakeARP) ProbeARP(ctx context.Context, ifname string, target netip.Addr) (net.HardwareAddr, error) {
	f.mu.Lock()
	f.probes++
	mac := f.answers[fakeKey(ifname, target)]
	f.mu.Unlock()
	if mac == nil {
		return nil, ErrNoAnswer
	}
	return mac, nil
}

func (f *FakeARP) WatchGARP(ctx context.Context, ifname string, ip netip.Addr, fn func(net.HardwareAddr)) error {
	f.mu.Lock()
	f.watchers[fakeKey(ifname, ip)] = append(f.watchers[fakeKey(ifname, ip)], fn)
	f.mu.Unlock()
	<-ctx.Done()
	return nil
}
