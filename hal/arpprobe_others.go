//go:build !linux

package hal

import (
	"context"
	"net"
	"net/netip"
)

func (*LinuxNetwork) ProbeARP(context.Context, string, netip.Addr) (net.HardwareAddr, error) {
	return nil, ErrUnsupported
}

func (*LinuxNetwork) WatchGARP(context.Context, string, netip.Addr, func(net.HardwareAddr)) error {
	return ErrUnsupported
}
