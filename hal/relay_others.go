//go:build !linux

package hal

import "net/netip"

func (*LinuxNetwork) Sysctl(string) (string, error)  { return "", ErrUnsupported }
func (*LinuxNetwork) SetSysctl(string, string) error { return ErrUnsupported }
func (*LinuxNetwork) AddRelayRules(string, netip.Addr) error {
	return ErrUnsupported
}
func (*LinuxNetwork) DelRelayRules(string, netip.Addr, bool) (bool, error) {
	return false, ErrUnsupported
}
func (*LinuxNetwork) ForgetNeighbor(string, netip.Addr) error { return ErrUnsupported }
