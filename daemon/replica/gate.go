package replica

import (
	"net"
	"net/netip"
	"time"
)

// The standby's door, in front of the handshake. Everything here happens
// before a byte of the connection is read:
//
//   - only the configured peer's address may connect: any other source is
//     closed at once and counted (rejected_source), its log line at most
//     once per refusedLogEvery;
//   - at most two inbound connections live: the adopted session and one
//     that has not proven the session key yet. A newer connection from
//     the peer's address replaces an older unproven one (a genuine
//     reconnect never waits behind a stale or replayed handshake); the
//     adopted session is replaced only by a connection that has proven
//     the key (adopt);
//   - the unproven connection has hsTimeout to send its hello and
//     3 x KeepAlive for its first session frame, and reads a hello of at
//     most maxHelloBody bytes into buffers of handshakeBuf.
const (
	hsTimeout       = 2 * time.Second
	refusedLogEvery = 10 * time.Second
)

// admit decides whether conn, just accepted, may go on to the handshake.
func (r *Replica) admit(conn net.Conn) bool {
	src, err := netip.ParseAddrPort(conn.RemoteAddr().String())
	if err != nil || src.Addr().Unmap() != r.peerIP {
		conn.Close()
		n := r.st.rejectedSource.Add(1)
		now := time.Now().UnixNano()
		if last := r.logged.Load(); now-last >= int64(refusedLogEvery) && r.logged.CompareAndSwap(last, now) {
			r.log.Warn("replication: connection from an address other than the peer's closed",
				"from", conn.RemoteAddr().String(), "peer", r.peerIP.String(), "refused_so_far", n)
		}
		return false
	}
	r.inMu.Lock()
	if r.hsConn != nil {
		r.hsConn.Close()
		r.st.superseded.Add(1)
	}
	r.hsConn = conn
	r.inMu.Unlock()
	return true
}

// handshakeDone frees the unproven slot if conn still holds it.
func (r *Replica) handshakeDone(conn net.Conn) {
	r.inMu.Lock()
	if r.hsConn == conn {
		r.hsConn = nil
	}
	r.inMu.Unlock()
}
