package balancer

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// tuneSocket sets IP_FREEBIND (so a virtual IP that is not yet ours can
// be bound), IP_TRANSPARENT when privileged (so a reply to a request that
// arrived just before the VIP was handed over can still be sent from the
// VIP: without it the kernel refuses a source address no longer local),
// and, for UDP, the kernel buffer sizes: SO_RCVBUFFORCE when privileged,
// else SO_RCVBUF (capped by net.core.rmem_max).
func tuneSocket(fd uintptr, network string, rcv, snd int) error {
	ifd := int(fd)
	_ = syscall.SetsockoptInt(ifd, syscall.SOL_IP, syscall.IP_FREEBIND, 1)
	_ = syscall.SetsockoptInt(ifd, syscall.SOL_IP, syscall.IP_TRANSPARENT, 1)
	if network != "udp" && network != "udp4" && network != "udp6" {
		return nil
	}
	if rcv > 0 {
		if err := syscall.SetsockoptInt(ifd, syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, rcv); err != nil {
			if err := syscall.SetsockoptInt(ifd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcv); err != nil {
				return fmt.Errorf("SO_RCVBUF %d: %w", rcv, err)
			}
		}
	}
	if snd > 0 {
		if err := syscall.SetsockoptInt(ifd, syscall.SOL_SOCKET, syscall.SO_SNDBUFFORCE, snd); err != nil {
			if err := syscall.SetsockoptInt(ifd, syscall.SOL_SOCKET, syscall.SO_SNDBUF, snd); err != nil {
				return fmt.Errorf("SO_SNDBUF %d: %w", snd, err)
			}
		}
	}
	return nil
}

// unread reports whether the kernel holds a datagram not yet read on
// fd (SIOCINQ: the size of the next one, 0 when none).
func unread(fd uintptr) bool {
	n, err := unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	return err == nil && n > 0
}
