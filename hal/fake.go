package hal

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Fake is an in-memory Network for unit tests of other packages:
// interfaces with admin and carrier state, addresses per interface, bonds
// that fail over when a slave's carrier drops, and a log of
// announcements. Errors can be injected per method with FailNext.
type Fake struct {
	mu       sync.Mutex
	links    map[string]*fakeLink
	bonds    map[string]*fakeBond
	announce []Announcement
	fail     map[string]error
	routes   map[bool]Route // default route per family (true: IPv6)
}

type fakeLink struct {
	st      LinkState
	carrier bool
	addrs   []netip.Prefix
	master  string
}

type fakeBond struct {
	cfg    BondConfig
	active string
}

// Announcement is one call to Fake.Announce.
type Announcement struct {
	Interface string
	IP        netip.Addr
	At        time.Time
}

var _ Network = (*Fake)(nil)

// NewFake returns a Fake with the named interfaces, admin down with
// carrier present (an up interface is then operationally up).
func NewFake(ifnames ...string) *Fake {
	f := &Fake{links: map[string]*fakeLink{}, bonds: map[string]*fakeBond{}, fail: map[string]error{}}
	for _, n := range ifnames {
		f.addLink(n)
	}
	return f
}

func (f *Fake) addLink(name string) *fakeLink {
	idx := len(f.links) + 1
	l := &fakeLink{
		st: LinkState{
			Name: name, Index: idx, MTU: 1500,
			HardwareAddr: net.HardwareAddr{0x02, 0, 0, 0, 0, byte(idx)},
		},
		carrier: true,
	}
	f.links[name] = l
	return l
}

// FailNext makes the next call of method (e.g. "AddAddress") return err.
func (f *Fake) FailNext(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[method] = err
}

func (f *Fake) injected(method string) error {
	if err, ok := f.fail[method]; ok {
		delete(f.fail, method)
		return err
	}
	return nil
}

func (f *Fake) link(name string) (*fakeLink, error) {
	l, ok := f.links[name]
	if !ok {
		return nil, fmt.Errorf("hal fake: %s: no such interface", name)
	}
	return l, nil
}

// AddAddress implements Addresses.
func (f *Fake) AddAddress(ifname string, p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("AddAddress"); err != nil {
		return err
	}
	l, err := f.link(ifname)
	if err != nil {
		return err
	}
	if !slices.Contains(l.addrs, p) {
		l.addrs = append(l.addrs, p)
	}
	return nil
}

// DelAddress implements Addresses.
func (f *Fake) DelAddress(ifname string, p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("DelAddress"); err != nil {
		return err
	}
	l, err := f.link(ifname)
	if err != nil {
		return err
	}
	l.addrs = slices.DeleteFunc(l.addrs, func(q netip.Prefix) bool { return q == p })
	return nil
}

// Addresses implements Addresses.
func (f *Fake) Addresses(ifname string) ([]netip.Prefix, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("Addresses"); err != nil {
		return nil, err
	}
	l, err := f.link(ifname)
	if err != nil {
		return nil, err
	}
	return slices.Clone(l.addrs), nil
}

// HasAddress reports whether p is on ifname.
func (f *Fake) HasAddress(ifname string, p netip.Prefix) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.links[ifname]
	return ok && slices.Contains(l.addrs, p)
}

// Link implements Links.
func (f *Fake) Link(ifname string) (LinkState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("Link"); err != nil {
		return LinkState{}, err
	}
	l, err := f.link(ifname)
	if err != nil {
		return LinkState{}, err
	}
	return f.state(l), nil
}

func (f *Fake) state(l *fakeLink) LinkState {
	st := l.st
	st.OperUp = st.AdminUp && f.carrier(l)
	return st
}

// carrier of a bond is "some slave up".
func (f *Fake) carrier(l *fakeLink) bool {
	if b, ok := f.bonds[l.st.Name]; ok {
		for _, s := range b.cfg.Slaves {
			if f.slaveUp(s) {
				return true
			}
		}
		return false
	}
	return l.carrier
}

func (f *Fake) slaveUp(name string) bool {
	l, ok := f.links[name]
	return ok && l.st.AdminUp && l.carrier
}

// SetLinkUp implements Links.
func (f *Fake) SetLinkUp(ifname string, up bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("SetLinkUp"); err != nil {
		return err
	}
	l, err := f.link(ifname)
	if err != nil {
		return err
	}
	l.st.AdminUp = up
	f.reselect()
	return nil
}

// SetCarrier simulates a cable pulled (false) or plugged (true).
func (f *Fake) SetCarrier(ifname string, up bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.link(ifname)
	if err != nil {
		return err
	}
	l.carrier = up
	f.reselect()
	return nil
}

// reselect moves each bond's active slave the way active-backup does:
// keep the current one while it is up, else the primary if up, else the
// first up slave.
func (f *Fake) reselect() {
	for _, b := range f.bonds {
		if b.active != "" && f.slaveUp(b.active) && (b.cfg.Primary == "" || b.active == b.cfg.Primary || !f.slaveUp(b.cfg.Primary)) {
			continue
		}
		b.active = ""
		if b.cfg.Primary != "" && f.slaveUp(b.cfg.Primary) {
			b.active = b.cfg.Primary
			continue
		}
		for _, s := range b.cfg.Slaves {
			if f.slaveUp(s) {
				b.active = s
				break
			}
		}
	}
}

// Announce implements Announcer by recording the call.
func (f *Fake) Announce(ifname string, ip netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("Announce"); err != nil {
		return err
	}
	if _, err := f.link(ifname); err != nil {
		return err
	}
	f.announce = append(f.announce, Announcement{Interface: ifname, IP: ip, At: time.Now()})
	return nil
}

// Announcements returns the announcements made so far.
func (f *Fake) Announcements() []Announcement {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.announce)
}

// CreateBond implements Bonds: it creates the bond interface, enslaves
// and brings up the slaves.
func (f *Fake) CreateBond(cfg BondConfig) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("CreateBond"); err != nil {
		return err
	}
	if cfg.Mode != BondActiveBackup && cfg.Mode != Bond8023AD {
		return fmt.Errorf("hal fake: bond %s: unsupported mode %q", cfg.Name, cfg.Mode)
	}
	for _, s := range cfg.Slaves {
		l, err := f.link(s)
		if err != nil {
			return err
		}
		if l.master != "" && l.master != cfg.Name {
			return fmt.Errorf("hal fake: %s is already enslaved to %s", s, l.master)
		}
	}
	if b, ok := f.bonds[cfg.Name]; ok && b.cfg.Mode != cfg.Mode {
		return fmt.Errorf("hal fake: bond %s exists in mode %s", cfg.Name, b.cfg.Mode)
	}
	bl, ok := f.links[cfg.Name]
	if !ok {
		bl = f.addLink(cfg.Name)
	}
	bl.st.AdminUp = true
	cfg.Slaves = slices.Clone(cfg.Slaves)
	f.bonds[cfg.Name] = &fakeBond{cfg: cfg}
	for _, s := range cfg.Slaves {
		f.links[s].master = cfg.Name
		f.links[s].st.AdminUp = true
	}
	f.reselect()
	return nil
}

// Bond implements Bonds.
func (f *Fake) Bond(name string) (BondStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("Bond"); err != nil {
		return BondStatus{}, err
	}
	b, ok := f.bonds[name]
	if !ok {
		return BondStatus{}, fmt.Errorf("hal fake: %s: no such bond", name)
	}
	st := BondStatus{
		Name: name, Mode: b.cfg.Mode, MIIMon: b.cfg.MIIMon,
		OperUp: f.state(f.links[name]).OperUp,
	}
	if b.cfg.Mode == BondActiveBackup {
		st.ActiveSlave = b.active
	}
	for _, s := range b.cfg.Slaves {
		up := f.slaveUp(s)
		active := up && b.cfg.Mode == Bond8023AD
		if b.cfg.Mode == BondActiveBackup {
			active = s == b.active
		}
		st.Slaves = append(st.Slaves, SlaveStatus{Name: s, LinkUp: up, Active: active})
	}
	return st, nil
}

// FakeWatchdog is an in-memory Watchdog that records what was done to it.
type FakeWatchdog struct {
	mu         sync.Mutex
	timeout    time.Duration
	keepalives int
	last       time.Time
	closed     bool
	abandoned  bool
	bootReset  bool
	// Now is the clock for keepalive times (time.Now if nil).
	Now func() time.Time
}

var _ Watchdog = (*FakeWatchdog)(nil)

// NewFakeWatchdog returns an armed fake with the given timeout;
// bootReset is what BootStatus reports.
func NewFakeWatchdog(timeout time.Duration, bootReset bool) *FakeWatchdog {
	return &FakeWatchdog{timeout: timeout, bootReset: bootReset}
}

func (w *FakeWatchdog) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

// Keepalive implements Watchdog.
func (w *FakeWatchdog) Keepalive() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.abandoned {
		return fmt.Errorf("hal fake: watchdog closed")
	}
	w.keepalives++
	w.last = w.now()
	return nil
}

// SetTimeout implements Watchdog.
func (w *FakeWatchdog) SetTimeout(d time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if d < time.Second {
		return fmt.Errorf("hal fake: watchdog timeout %v below 1s", d)
	}
	w.timeout = d.Round(time.Second)
	return nil
}

// Timeout implements Watchdog.
func (w *FakeWatchdog) Timeout() (time.Duration, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.timeout, nil
}

// BootStatus implements Watchdog.
func (w *FakeWatchdog) BootStatus() (bool, error) { return w.bootReset, nil }

// Close implements Watchdog (magic close).
func (w *FakeWatchdog) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	return nil
}

// Abandon implements Watchdog.
func (w *FakeWatchdog) Abandon() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.abandoned = true
	return nil
}

// FakeWatchdogState is a snapshot of a FakeWatchdog.
type FakeWatchdogState struct {
	Keepalives    int
	LastKeepalive time.Time
	Timeout       time.Duration
	Closed        bool // magic-closed: disarmed
	Abandoned     bool // closed without the magic: still armed
}

// State returns what has been done to the watchdog.
func (w *FakeWatchdog) State() FakeWatchdogState {
	w.mu.Lock()
	defer w.mu.Unlock()
	return FakeWatchdogState{Keepalives: w.keepalives, LastKeepalive: w.last, Timeout: w.timeout, Closed: w.closed, Abandoned: w.abandoned}
}

// Expired reports whether a real watchdog would have reset the board by
// now: armed, and no keepalive for longer than the timeout.
func (w *FakeWatchdog) Expired(now time.Time, armedAt time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	last := w.last
	if last.IsZero() {
		last = armedAt
	}
	return now.Sub(last) > w.timeout
}
