//go:build !linux

package balancer

import (
	"net"
	"net/netip"
)

// udpSender sends with net's own write where the raw sendto(2) of
// sendudp_linux.go is not there.
type udpSender struct{ c *net.UDPConn }

func newUDPSender(c *net.UDPConn) (*udpSender, error) { return &udpSender{c: c}, nil }

func (s *udpSender) send(data []byte, dst netip.AddrPort) error {
	_, err := s.c.WriteToUDPAddrPort(data, dst)
	return err
}
