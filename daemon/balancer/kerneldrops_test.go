package balancer

import (
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
)

// TestUDPKernelDrops overflows a small receive buffer on loopback and
// checks that udpDrops (behind sipedge_sip_udp_kernel_drops) sees the
// kernel's drop count for that socket.
func TestUDPKernelDrops(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc/net/udp is Linux only")
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, _ := c.SyscallConn()
	rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	ap := c.LocalAddr().(*net.UDPAddr).AddrPort()
	ip := ap.Addr().Unmap().AsSlice()

	before, err := udpDrops("/proc/net/udp", ip, ap.Port())
	if err != nil {
		t.Fatalf("our socket not found: %v", err)
	}
	s, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	payload := make([]byte, 1000)
	for i := 0; i < 200; i++ { // never read: the buffer overflows
		s.Write(payload)
	}
	after, err := udpDrops("/proc/net/udp", ip, ap.Port())
	if err != nil {
		t.Fatal(err)
	}
	if after-before < 100 {
		t.Errorf("drops went from %d to %d after 200 datagrams into a 4 KiB buffer", before, after)
	}
}
