//go:build !linux

package balancer

import (
	"net"
	"net/netip"
)

// udpBatch reads one datagram per call where recvmmsg(2) is not there.
type udpBatch struct {
	c   *net.UDPConn
	buf []byte
	n   int
	src netip.AddrPort
}

func newUDPBatch(c *net.UDPConn, _, size int) (*udpBatch, error) {
	return &udpBatch{c: c, buf: make([]byte, size)}, nil
}

func (r *udpBatch) read() (int, error) {
	n, src, err := r.c.ReadFromUDPAddrPort(r.buf)
	if err != nil {
		return 0, err
	}
	r.n, r.src = n, netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	return 1, nil
}

func (r *udpBatch) msg(int) ([]byte, netip.AddrPort, bool) { return r.buf[:r.n], r.src, false }
