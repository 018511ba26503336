package balancer

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"
)

// udpBatch reads up to len(bufs) datagrams per system call with
// recvmmsg(2): under load one wake-up of the reader drains what the
// kernel queued instead of one recvfrom (and one poller round trip) per
// datagram. Buffers, headers and addresses are allocated once.
type udpBatch struct {
	rc    syscall.RawConn
	hdrs  []mmsghdr
	iovs  []syscall.Iovec
	names []syscall.RawSockaddrInet6 // large enough for IPv4 too
	bufs  [][]byte

	recv func(fd uintptr) bool // r.recvmmsg, bound once: no closure per read
	got  int
	err  error
}

// mmsghdr is struct mmsghdr: a msghdr and the length received (the
// compiler pads it to the kernel's layout on 32- and 64-bit).
type mmsghdr struct {
	hdr syscall.Msghdr
	n   uint32
}

func newUDPBatch(c *net.UDPConn, n, size int) (*udpBatch, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("udp batch reader: %w", err)
	}
	r := &udpBatch{rc: rc, hdrs: make([]mmsghdr, n), iovs: make([]syscall.Iovec, n),
		names: make([]syscall.RawSockaddrInet6, n), bufs: make([][]byte, n)}
	for i := range r.hdrs {
		r.bufs[i] = make([]byte, size)
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(size)
		h := &r.hdrs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		h.Iov = &r.iovs[i]
		h.Iovlen = 1
	}
	r.recv = r.recvmmsg
	return r, nil
}

// read blocks until at least one datagram is there and returns how many
// were read; msg(i) returns each.
func (r *udpBatch) read() (int, error) {
	r.got, r.err = 0, nil
	if err := r.rc.Read(r.recv); err != nil {
		return 0, err
	}
	if r.err != nil {
		return 0, fmt.Errorf("recvmmsg: %w", r.err)
	}
	return r.got, nil
}

// recvmmsg is one non-blocking recvmmsg for RawConn.Read: false to wait
// on the poller.
func (r *udpBatch) recvmmsg(fd uintptr) bool {
	for i := range r.hdrs {
		r.hdrs[i].hdr.Namelen = uint32(unsafe.Sizeof(r.names[i]))
		r.hdrs[i].hdr.Flags = 0
		r.hdrs[i].n = 0
	}
	// Raw: MSG_DONTWAIT never blocks (see udpSender for why that matters).
	n, _, e := syscall.RawSyscall6(syscall.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(len(r.hdrs)),
		syscall.MSG_DONTWAIT, 0, 0)
	switch e {
	case 0:
		r.got = int(n)
	case syscall.EAGAIN:
		return false // wait on the poller
	case syscall.EINTR:
		return false
	default:
		r.err = e
	}
	return true
}

// msg returns datagram i of the last read (valid until the next read),
// and whether the kernel cut it to the buffer size.
func (r *udpBatch) msg(i int) ([]byte, netip.AddrPort, bool) {
	h := &r.hdrs[i]
	data := r.bufs[i][:h.n]
	trunc := h.hdr.Flags&syscall.MSG_TRUNC != 0
	sa := &r.names[i]
	pb := (*[2]byte)(unsafe.Pointer(&sa.Port)) // network byte order
	port := uint16(pb[0])<<8 | uint16(pb[1])
	switch sa.Family {
	case syscall.AF_INET:
		sa4 := (*syscall.RawSockaddrInet4)(unsafe.Pointer(sa))
		return data, netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port), trunc
	case syscall.AF_INET6:
		return data, netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), port), trunc
	}
	return data, netip.AddrPort{}, trunc
}
