package balancer

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestUDPSender sends through udpSender from sockets of both families
// and reads what arrived, and from where.
func TestUDPSender(t *testing.T) {
	recv4 := listenUDP(t, "udp4", "127.0.0.1:0")
	type senderCase struct {
		name   string
		net    string
		laddr  string
		to     *net.UDPConn
		wantIP string // source address the receiver sees
	}
	tests := []senderCase{
		{"ipv4 socket", "udp4", "127.0.0.1:0", recv4, "127.0.0.1"},
		{"dual-stack socket to ipv4", "udp", "[::]:0", recv4, "127.0.0.1"},
	}
	if c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback}); err == nil {
		tests = append(tests, senderCase{"ipv6 socket", "udp6", "[::1]:0", c, "::1"})
		t.Cleanup(func() { c.Close() })
	} else {
		t.Logf("no IPv6 loopback here (%v): the IPv6 case is left out", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			from := listenUDP(t, tc.net, tc.laddr)
			s, err := newUDPSender(from)
			if err != nil {
				t.Fatal(err)
			}
			msg := []byte("OPTIONS sip:x SIP/2.0\r\n\r\n")
			if err := s.send(msg, localAddr(tc.to)); err != nil {
				t.Fatalf("send: %v", err)
			}
			buf := make([]byte, 1500)
			tc.to.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, src, err := tc.to.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if !bytes.Equal(buf[:n], msg) {
				t.Errorf("got %q, want %q", buf[:n], msg)
			}
			if got := src.Addr().Unmap().String(); got != tc.wantIP {
				t.Errorf("source %s, want %s", got, tc.wantIP)
			}
			if int(src.Port()) != from.LocalAddr().(*net.UDPAddr).Port {
				t.Errorf("source port %d, want the sender's %s", src.Port(), from.LocalAddr())
			}
		})
	}
}

func TestUDPSenderErrors(t *testing.T) {
	c := listenUDP(t, "udp4", "127.0.0.1:0")
	s, err := newUDPSender(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.send([]byte("x"), netip.MustParseAddrPort("[2001:db8::1]:5060")); err == nil {
		t.Error("an IPv6 destination on an IPv4 socket: no error")
	}
	c.Close()
	if err := s.send([]byte("x"), netip.MustParseAddrPort("127.0.0.1:9")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("send after Close: %v, want net.ErrClosed", err)
	}
}

func listenUDP(t *testing.T, network, addr string) *net.UDPConn {
	t.Helper()
	pc, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Fatalf("listen %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.(*net.UDPConn)
}

func localAddr(c *net.UDPConn) netip.AddrPort {
	a := c.LocalAddr().(*net.UDPAddr).AddrPort()
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
