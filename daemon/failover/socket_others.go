//go:build !linux

package failover

import "net"

// HeartbeatReadBuffer is the receive buffer asked for the heartbeat
// socket.
const HeartbeatReadBuffer = 1 << 20

// setReadBuffer sets c's receive buffer to n bytes where the platform
// allows it; the size it reports afterwards is not known here (0).
func setReadBuffer(c *net.UDPConn, n int) (int, error) {
	return 0, c.SetReadBuffer(n)
}
