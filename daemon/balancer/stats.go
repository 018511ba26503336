package balancer

import "sync/atomic"

// Stats are the balancer's counters, monotonic since start. They are
// plain atomics so the hot path pays no more than an add; metrics.go
// exports them to Prometheus.
type Stats struct {
	In, Out         msgCounts     // messages read / sent, by method or response class
	Received        atomic.Uint64 // messages read
	QueueDrops      atomic.Uint64 // messages dropped: worker queue full
	ProbesPutOff    atomic.Uint64 // probe timeouts not counted: the balancer was behind on the reply's socket
	AttemptsPutOff  atomic.Uint64 // attempt timeouts toward a Core put off: the balancer was behind on the Core side
	TwinRefused     atomic.Uint64 // datagrams on a Core-facing twin from neither a Core nor a trusted source
	Shed            atomic.Uint64 // new INVITEs refused 503 by admission control (workers behind)
	Malformed       atomic.Uint64 // unparsable or invalid messages
	TooLarge        atomic.Uint64 // messages over the size limit
	Panics          atomic.Uint64 // recovered panics in message handling
	Forwarded       atomic.Uint64 // requests forwarded
	Retransmissions atomic.Uint64 // request retransmissions absorbed
	StatelessAcks   atomic.Uint64 // ACKs of our stateless replies (shed 503s, refusals) absorbed
	Retransmitted   atomic.Uint64 // requests we retransmitted (UDP timers)
	Calls           atomic.Uint64 // initial INVITEs routed to a Core
	Answered        atomic.Uint64 // initial INVITEs answered 2xx
	Failovers       atomic.Uint64 // attempts moved to the next Core
	AttemptTimeouts atomic.Uint64 // attempts without any answer in time
	NoCore          atomic.Uint64 // 503: every Core full or down
	CancelsSent     atomic.Uint64
	DialogsExpired  atomic.Uint64
	SendErrors      atomic.Uint64
	Replies4xx      atomic.Uint64 // 4xx sent upstream (ours or forwarded)
	Replies5xx      atomic.Uint64
	Replies6xx      atomic.Uint64
	Replies503      atomic.Uint64 // 503s among Replies5xx (no Core, shed, forwarded)

	// FinalsRetransmitted counts non-2xx finals to INVITE sent again to
	// a UDP caller that had not ACKed them (Timer G); FinalsUnacked the
	// transactions whose ACK never came (Timer H).
	FinalsRetransmitted atomic.Uint64
	FinalsUnacked       atomic.Uint64
	// LateAnswers counts 2xx on attempts already given up (attempt
	// timer, Core down) that the balancer ACKed and ended with BYE.
	LateAnswers atomic.Uint64

	// TCPRefused counts inbound TCP connections closed at accept, and
	// TCPClosed the TCP connections ended, by the reasons named in
	// tcpRefusedReasons and tcpClosedReasons.
	TCPRefused [len(tcpRefusedReasons)]atomic.Uint64
	TCPClosed  [len(tcpClosedReasons)]atomic.Uint64
	// TLSHandshakes counts TLS handshakes, both ways, by tlsResults.
	TLSHandshakes [numTLSResults]atomic.Uint64

	// Refused counts messages from untrusted sources the routing policy
	// did not forward, by the reasons in refusedReasons (relay.go);
	// AtCap the requests refused at a table's cap, by capReasons (caps.go).
	Refused [len(refusedReasons)]atomic.Uint64
	AtCap   [len(capReasons)]atomic.Uint64
}

// Why an inbound TCP connection was refused (Stats.TCPRefused).
const (
	tcpRefusedMaxConnections = iota
	tcpRefusedPerSource
	tcpRefusedBanned
)

var tcpRefusedReasons = [...]string{"max_connections", "per_source", "banned"}

// Why a TCP connection ended (Stats.TCPClosed): idle timeout, a message
// not complete in time, framing lost (bad Content-Length, too large), a
// message the Screen dropped (banned source, scanner), closed by the
// peer (or a read error) between messages, closed here (a write failed,
// the balancer stopped), an accepted connection silent past the message
// timeout (a half-open one: nothing sent), a TLS handshake that failed
// or did not finish in time, closed by the peer (or a read error) in the
// middle of a message.
const (
	tcpClosedIdle = iota
	tcpClosedMessageTimeout
	tcpClosedMalformed
	tcpClosedScreened
	tcpClosedPeer
	tcpClosedLocal
	tcpClosedSilent
	tcpClosedHandshake
	tcpClosedCut
)

var tcpClosedReasons = [...]string{"idle", "message_timeout", "malformed", "screened", "peer", "local", "silent", "handshake", "cut"}

func (s *Stats) countReply(code int) {
	switch {
	case code >= 600:
		s.Replies6xx.Add(1)
	case code >= 500:
		s.Replies5xx.Add(1)
		if code == 503 {
			s.Replies503.Add(1)
		}
	case code >= 400:
		s.Replies4xx.Add(1)
	}
}

// Snapshot returns the counters by name (for ctl and tests).
func (s *Stats) Snapshot() map[string]uint64 {
	m := map[string]uint64{
		"received": s.Received.Load(), "queue_drops": s.QueueDrops.Load(), "core_side_refused": s.TwinRefused.Load(), "probes_put_off": s.ProbesPutOff.Load(), "shed": s.Shed.Load(), "malformed": s.Malformed.Load(),
		"too_large": s.TooLarge.Load(), "panics": s.Panics.Load(), "forwarded": s.Forwarded.Load(),
		"retransmissions_absorbed": s.Retransmissions.Load(), "stateless_acks_absorbed": s.StatelessAcks.Load(), "retransmitted": s.Retransmitted.Load(),
		"finals_retransmitted": s.FinalsRetransmitted.Load(), "finals_unacked": s.FinalsUnacked.Load(), "late_answers_ended": s.LateAnswers.Load(),
		"calls": s.Calls.Load(), "answered": s.Answered.Load(), "failovers": s.Failovers.Load(),
		"attempt_timeouts": s.AttemptTimeouts.Load(), "no_core": s.NoCore.Load(), "cancels_sent": s.CancelsSent.Load(),
		"dialogs_expired": s.DialogsExpired.Load(), "send_errors": s.SendErrors.Load(),
		"replies_4xx": s.Replies4xx.Load(), "replies_5xx": s.Replies5xx.Load(), "replies_6xx": s.Replies6xx.Load(),
		"replies_503": s.Replies503.Load(),
	}
	for i, r := range tcpRefusedReasons {
		m["tcp_refused_"+r] = s.TCPRefused[i].Load()
	}
	for i, r := range tcpClosedReasons {
		m["tcp_closed_"+r] = s.TCPClosed[i].Load()
	}
	for i, r := range tlsResults {
		m["tls_handshakes_"+r] = s.TLSHandshakes[i].Load()
	}
	for i, r := range refusedReasons {
		m["relay_refused_"+r] = s.Refused[i].Load()
	}
	for i, r := range capReasons {
		m["at_cap_"+r] = s.AtCap[i].Load()
	}
	return m
}
