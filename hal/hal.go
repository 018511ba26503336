// Package hal is sipedge's hardware abstraction layer: network addresses,
// link state, bonded NICs, gratuitous ARP / unsolicited neighbour
// advertisements, and the hardware watchdog.
//
// Each concern is a small interface declared here. The Linux
// implementations live in *_linux.go files (netlink, packet sockets,
// /dev/watchdog); other systems get implementations that return
// ErrUnsupported. An in-memory fake for unit tests is in fake.go.
//
// hal knows nothing of SIP or failover: daemon packages use it, never the
// reverse.
package hal

import (
	"errors"
	"net"
	"net/netip"
	"time"
)

// ErrUnsupported is returned by operations the running system cannot do
// (a non-Linux build, a kernel without bonding, no watchdog device).
var ErrUnsupported = errors.New("hal: not supported on this system")

// Addresses adds, removes and lists IP addresses on interfaces. Add and
// Del are idempotent: adding an address that is present, or deleting one
// that is absent, is not an error.
type Addresses interface {
	AddAddress(ifname string, p netip.Prefix) error
	DelAddress(ifname string, p netip.Prefix) error
	// Addresses lists the addresses on ifname.
	Addresses(ifname string) ([]netip.Prefix, error)
}

// LinkState is what the kernel says about one interface.
type LinkState struct {
	Name         string
	Index        int
	HardwareAddr net.HardwareAddr
	AdminUp      bool // IFF_UP
	OperUp       bool // carrier and operationally up
	MTU          int
}

// Links reports and changes link state.
type Links interface {
	Link(ifname string) (LinkState, error)
	SetLinkUp(ifname string, up bool) error
}

// Announcer tells the LAN that an address now lives on an interface:
// a gratuitous ARP for IPv4, an unsolicited neighbour advertisement for
// IPv6. One call sends one announcement; callers decide bursts.
type Announcer interface {
	Announce(ifname string, ip netip.Addr) error
}

// BondMode is the bonding driver's mode.
type BondMode string

const (
	BondActiveBackup BondMode = "active-backup"
	Bond8023AD       BondMode = "802.3ad"
)

// BondConfig describes a bond to create.
type BondConfig struct {
	Name    string
	Mode    BondMode
	MIIMon  time.Duration
	Primary string   // active-backup only; may be empty
	Slaves  []string // NICs to enslave, in order
}

// SlaveStatus is one enslaved NIC as the bond sees it.
type SlaveStatus struct {
	Name   string
	LinkUp bool // MII status
	Active bool // the active slave (active-backup)
}

// BondStatus is a bond read back from the kernel.
type BondStatus struct {
	Name        string
	Mode        BondMode
	MIIMon      time.Duration
	OperUp      bool
	ActiveSlave string
	Slaves      []SlaveStatus
}

// Bonds creates and reads bonded interfaces.
type Bonds interface {
	// CreateBond creates the bond (if absent), sets its options, enslaves
	// the NICs and brings it up. It is idempotent.
	CreateBond(cfg BondConfig) error
	Bond(name string) (BondStatus, error)
}

// Watchdog is an opened hardware watchdog. Opening arms it: from then on
// Keepalive must be called within Timeout or the board resets.
type Watchdog interface {
	Keepalive() error
	SetTimeout(d time.Duration) error
	Timeout() (time.Duration, error)
	// BootStatus reports whether the last reset was caused by the watchdog.
	BootStatus() (WatchdogReset bool, err error)
	// Close disarms the watchdog with the magic close, for a clean shutdown.
	Close() error
	// Abandon closes the device without the magic close: the watchdog
	// stays armed and resets the board when the timeout runs out.
	Abandon() error
}

// Network is the set of network operations the daemon needs.
type Network interface {
	Addresses
	Links
	Announcer
	Bonds
}
