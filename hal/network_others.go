//go:build !linux

package hal

import (
	"net/netip"
	"time"
)

// LinuxNetwork is only implemented on Linux; elsewhere every method
// returns ErrUnsupported.
type LinuxNetwork struct{}

var _ Network = (*LinuxNetwork)(nil)

// OpenNetwork returns ErrUnsupported outside Linux.
func OpenNetwork() (*LinuxNetwork, error) { return nil, ErrUnsupported }

func (*LinuxNetwork) Close() error                             { return nil }
func (*LinuxNetwork) AddAddress(string, netip.Prefix) error    { return ErrUnsupported }
func (*LinuxNetwork) DelAddress(string, netip.Prefix) error    { return ErrUnsupported }
func (*LinuxNetwork) Addresses(string) ([]netip.Prefix, error) { return nil, ErrUnsupported }
func (*LinuxNetwork) Link(string) (LinkState, error)           { return LinkState{}, ErrUnsupported }
func (*LinuxNetwork) SetLinkUp(string, bool) error             { return ErrUnsupported }
func (*LinuxNetwork) Announce(string, netip.Addr) error        { return ErrUnsupported }
func (*LinuxNetwork) CreateBond(BondConfig) error              { return ErrUnsupported }
func (*LinuxNetwork) Bond(string) (BondStatus, error)          { return BondStatus{}, ErrUnsupported }

// DeviceWatchdog is only implemented on Linux.
type DeviceWatchdog struct{}

var _ Watchdog = (*DeviceWatchdog)(nil)

// OpenWatchdog returns ErrUnsupported outside Linux.
func OpenWatchdog(string, time.Duration) (*DeviceWatchdog, error) { return nil, ErrUnsupported }

func (*DeviceWatchdog) Keepalive() error                { return ErrUnsupported }
func (*DeviceWatchdog) SetTimeout(time.Duration) error  { return ErrUnsupported }
func (*DeviceWatchdog) Timeout() (time.Duration, error) { return 0, ErrUnsupported }
func (*DeviceWatchdog) BootStatus() (bool, error)       { return false, ErrUnsupported }
func (*DeviceWatchdog) Close() error                    { return nil }
func (*DeviceWatchdog) Abandon() error                  { return nil }
