package balancer

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"unsafe"
)

// udpSender sends datagrams on a UDP socket with sendto(2) issued as a
// raw system call (MSG_DONTWAIT: it never blocks). The socket is
// non-blocking, so the goroutine keeps its P: a send of a few
// microseconds does not enter the scheduler's syscall state. That state
// costs more than entering and leaving it: on a busy 2-core box a
// sending thread the kernel descheduled looks to sysmon like a
// blocking call, sysmon takes the P away, hands it to another thread,
// and drops back to polling every 20 µs — about a tenth of the
// balancer's CPU at 4,000 CPS (perf, 2026-11-30). When the socket's
// buffer is full (EAGAIN) the send waits on the poller like net's.
//
// The send goes through the connection's RawConn, so it holds the
// descriptor's write lock: a send racing Close fails cleanly instead of
// writing to a descriptor number reused by then.
type udpSender struct {
	rc  syscall.RawConn
	v6  bool // an AF_INET6 socket (IPv4 destinations as v4-mapped)
	ops sync.Pool
}

// sendOp is one send's arguments, pooled: RawConn.Write takes a
// func(uintptr) bool, and a method value bound once per sendOp makes no
// closure per send.
type sendOp struct {
	data []byte
	sa   syscall.RawSockaddrInet6 // large enough for a sockaddr_in too
	slen uintptr
	err  syscall.Errno
	fn   func(uintptr) bool
}

func newUDPSender(c *net.UDPConn) (*udpSender, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("udp sender: %w", err)
	}
	s := &udpSender{rc: rc}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		var sa syscall.Sockaddr
		if sa, serr = syscall.Getsockname(int(fd)); serr == nil {
			_, s.v6 = sa.(*syscall.SockaddrInet6)
		}
	}); err != nil {
		return nil, fmt.Errorf("udp sender: %w", err)
	}
	if serr != nil {
		return nil, fmt.Errorf("udp sender: getsockname: %w", serr)
	}
	s.ops.New = func() any {
		op := &sendOp{}
		op.fn = op.sendto
		return op
	}
	return s, nil
}

// send sends data to dst as one datagram.
func (s *udpSender) send(data []byte, dst netip.AddrPort) error {
	if len(data) == 0 {
		return nil
	}
	op := s.ops.Get().(*sendOp)
	defer s.ops.Put(op)
	if err := op.setAddr(dst, s.v6); err != nil {
		return err
	}
	op.data, op.err = data, 0
	err := s.rc.Write(op.fn)
	op.data = nil
	if err != nil {
		return err
	}
	if op.err != 0 {
		return op.err
	}
	return nil
}

// setAddr fills the sockaddr for dst on a socket of the given family.
func (op *sendOp) setAddr(dst netip.AddrPort, v6 bool) error {
	a := dst.Addr()
	port := dst.Port()
	pb := (*[2]byte)(unsafe.Pointer(&op.sa.Port)) // network byte order
	switch {
	case !v6 && a.Is4():
		sa4 := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&op.sa))
		*sa4 = syscall.RawSockaddrInet4{Family: syscall.AF_INET}
		pb[0], pb[1] = byte(port>>8), byte(port)
		sa4.Addr = a.As4()
		op.slen = syscall.SizeofSockaddrInet4
	case v6:
		op.sa = syscall.RawSockaddrInet6{Family: syscall.AF_INET6}
		pb[0], pb[1] = byte(port>>8), byte(port)
		op.sa.Addr = a.As16() // an IPv4 address comes out v4-mapped
		op.slen = syscall.SizeofSockaddrInet6
	default:
		return fmt.Errorf("udp write %s: an IPv6 destination on an IPv4 socket", dst)
	}
	return nil
}

// sendto is the system call for RawConn.Write: false to wait until the
// socket is writable.
func (op *sendOp) sendto(fd uintptr) bool {
	_, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&op.data[0])), uintptr(len(op.data)),
		syscall.MSG_DONTWAIT, uintptr(unsafe.Pointer(&op.sa)), op.slen)
	switch e {
	case 0:
	case syscall.EAGAIN:
		return false
	case syscall.EINTR:
		return op.sendto(fd)
	default:
		op.err = e
	}
	return true
}
