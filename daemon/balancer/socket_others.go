//go:build !linux

package balancer

import "syscall"

// tuneSocket sets the UDP buffer sizes where the platform allows it.
func tuneSocket(fd uintptr, network string, rcv, snd int) error {
	if network != "udp" && network != "udp4" && network != "udp6" {
		return nil
	}
	if rcv > 0 {
		_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcv)
	}
	if snd > 0 {
		_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, snd)
	}
	return nil
}

// unread is known on Linux only (SIOCINQ).
func unread(fd uintptr) bool { return false }
