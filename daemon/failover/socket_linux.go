package failover

import (
	"net"
	"syscall"
)

// HeartbeatReadBuffer is the receive buffer asked for the heartbeat
// socket (the kernel reports and charges twice as much).
const HeartbeatReadBuffer = 1 << 20

// setReadBuffer sets c's receive buffer to n bytes: SO_RCVBUFFORCE when
// privileged (past net.core.rmem_max), else SO_RCVBUF (capped by it). It
// returns the size the kernel reports afterwards.
func setReadBuffer(c *net.UDPConn, n int) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var have int
	var serr error
	err = rc.Control(func(fd uintptr) {
		if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, n); serr != nil {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
		}
		have, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	})
	if err == nil {
		err = serr
	}
	return have, err
}
