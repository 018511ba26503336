//go:build !linux

package hal

import "net/netip"

// SetDefaultRoute is not supported outside Linux.
func (*LinuxNetwork) SetDefaultRoute(string, netip.Addr) error { return ErrUnsupported }

// DelDefaultRoute is not supported outside Linux.
func (*LinuxNetwork) DelDefaultRoute(bool) error { return ErrUnsupported }

// DefaultRoutes is not supported outside Linux.
func (*LinuxNetwork) DefaultRoutes() ([]Route, error) { return nil, ErrUnsupported }

// ListLinks is not supported outside Linux.
func (*LinuxNetwork) ListLinks() ([]LinkState, error) { return nil, ErrUnsupported }
