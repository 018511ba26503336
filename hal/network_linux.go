package hal

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"

	"github.com/jsimonetti/rtnetlink/v2"
	"golang.org/x/sys/unix"
)

// LinuxNetwork implements Network over rtnetlink (addresses, links,
// bonds) and packet sockets (announcements). It is safe for concurrent
// use: calls share one netlink socket under a mutex.
type LinuxNetwork struct {
	mu   sync.Mutex
	conn *rtnetlink.Conn
}

var _ Network = (*LinuxNetwork)(nil)

// OpenNetwork dials rtnetlink in the calling thread's network namespace.
func OpenNetwork() (*LinuxNetwork, error) {
	c, err := rtnetlink.Dial(nil)
	if err != nil {
		return nil, fmt.Errorf("hal: dial rtnetlink: %w", err)
	}
	return &LinuxNetwork{conn: c}, nil
}

// Close releases the netlink socket.
func (n *LinuxNetwork) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.conn.Close()
}

// errNoLink is wrapped when an interface does not exist.
var errNoLink = errors.New("no such interface")

// linkByName finds one link; the caller holds n.mu.
func (n *LinuxNetwork) linkByName(name string) (rtnetlink.LinkMessage, error) {
	links, err := n.conn.Link.List()
	if err != nil {
		return rtnetlink.LinkMessage{}, fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		if l.Attributes != nil && l.Attributes.Name == name {
			return l, nil
		}
	}
	return rtnetlink.LinkMessage{}, fmt.Errorf("%s: %w", name, errNoLink)
}

func linkState(l rtnetlink.LinkMessage) LinkState {
	a := l.Attributes
	st := LinkState{
		Name:    a.Name,
		Index:   int(l.Index),
		AdminUp: l.Flags&unix.IFF_UP != 0,
		MTU:     int(a.MTU),
	}
	if len(a.Address) > 0 {
		st.HardwareAddr = append(net.HardwareAddr(nil), a.Address...)
	}
	// IFF_LOWER_UP is carrier; OperationalState is RFC 2863 state. veth
	// and loopback report "unknown" while working, so accept carrier with
	// unknown as up.
	lower := l.Flags&unix.IFF_LOWER_UP != 0
	st.OperUp = st.AdminUp && lower &&
		(a.OperationalState == rtnetlink.OperStateUp || a.OperationalState == rtnetlink.OperStateUnknown)
	return st
}

// Link reports one interface's state.
func (n *LinuxNetwork) Link(ifname string) (LinkState, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	l, err := n.linkByName(ifname)
	if err != nil {
		return LinkState{}, fmt.Errorf("hal: link: %w", err)
	}
	return linkState(l), nil
}

// SetLinkUp sets or clears IFF_UP.
func (n *LinuxNetwork) SetLinkUp(ifname string, up bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.setUp(ifname, up); err != nil {
		return fmt.Errorf("hal: set %s %s: %w", ifname, upDown(up), err)
	}
	return nil
}

func (n *LinuxNetwork) setUp(ifname string, up bool) error {
	l, err := n.linkByName(ifname)
	if err != nil {
		return err
	}
	var flags uint32
	if up {
		flags = unix.IFF_UP
	}
	return n.conn.Link.Set(&rtnetlink.LinkMessage{
		Family: unix.AF_UNSPEC,
		Type:   l.Type,
		Index:  l.Index,
		Flags:  flags,
		Change: unix.IFF_UP,
	})
}

func addrMessage(index uint32, p netip.Prefix) *rtnetlink.AddressMessage {
	a := p.Addr()
	fam := uint8(unix.AF_INET)
	if a.Is6() && !a.Is4In6() {
		fam = unix.AF_INET6
	} else {
		a = a.Unmap()
	}
	ip := net.IP(a.AsSlice())
	m := &rtnetlink.AddressMessage{
		Family:       fam,
		PrefixLength: uint8(p.Bits()),
		Scope:        unix.RT_SCOPE_UNIVERSE,
		Index:        index,
		Attributes:   &rtnetlink.AddressAttributes{Address: ip, Local: ip},
	}
	if fam == unix.AF_INET6 {
		// A VIP must answer at once, not after duplicate address detection.
		m.Attributes.Flags = unix.IFA_F_NODAD
		m.Attributes.Local = nil
	} else if p.Bits() < 31 {
		m.Attributes.Broadcast = broadcast(p)
	}
	return m
}

func broadcast(p netip.Prefix) net.IP {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= host
	return net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v)).To4()
}

// AddAddress adds p to ifname; an address already present is not an error.
func (n *LinuxNetwork) AddAddress(ifname string, p netip.Prefix) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	l, err := n.linkByName(ifname)
	if err != nil {
		return fmt.Errorf("hal: add %s: %w", p, err)
	}
	err = n.conn.Address.New(addrMessage(l.Index, p))
	if err != nil && !errors.Is(err, os.ErrExist) && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("hal: add %s to %s: %w", p, ifname, err)
	}
	return nil
}

// DelAddress removes p from ifname; an absent address is not an error.
func (n *LinuxNetwork) DelAddress(ifname string, p netip.Prefix) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	l, err := n.linkByName(ifname)
	if err != nil {
		return fmt.Errorf("hal: del %s: %w", p, err)
	}
	err = n.conn.Address.Delete(addrMessage(l.Index, p))
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ESRCH) && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("hal: del %s from %s: %w", p, ifname, err)
	}
	return nil
}

// Addresses lists the addresses on ifname, IPv4 first, in kernel order.
func (n *LinuxNetwork) Addresses(ifname string) ([]netip.Prefix, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	l, err := n.linkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("hal: addresses: %w", err)
	}
	msgs, err := n.conn.Address.List()
	if err != nil {
		return nil, fmt.Errorf("hal: list addresses: %w", err)
	}
	var v4, v6 []netip.Prefix
	for _, m := range msgs {
		if m.Index != l.Index || m.Attributes == nil {
			continue
		}
		ip := m.Attributes.Local
		if ip == nil {
			ip = m.Attributes.Address
		}
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			continue
		}
		p := netip.PrefixFrom(a.Unmap(), int(m.PrefixLength))
		if p.Addr().Is4() {
			v4 = append(v4, p)
		} else {
			v6 = append(v6, p)
		}
	}
	return append(v4, v6...), nil
}
