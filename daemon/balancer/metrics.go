package balancer

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports a Balancer's counters and its Cores' state to
// Prometheus. Register it with NewCollector(b) on any registerer.
type Collector struct {
	b        *Balancer
	counters []counterDesc
	calls    *prometheus.Desc
	pending  *prometheus.Desc
	state    *prometheus.Desc
	latency  *prometheus.Desc
	routed   *prometheus.Desc
	answered *prometheus.Desc
	fail     *prometheus.Desc
	tx       *prometheus.Desc
	dialogs  *prometheus.Desc
	drops    *prometheus.Desc
	reqs     *prometheus.Desc
	resps    *prometheus.Desc
	tcpOpen  *prometheus.Desc
	tcpRef   *prometheus.Desc
	tcpEnd   *prometheus.Desc
	caps     *prometheus.Desc
	atCap    *prometheus.Desc
	refused  *prometheus.Desc
	group    *prometheus.Desc
	tlsHS    *prometheus.Desc
	stale    *prometheus.Desc
}

type counterDesc struct {
	d   *prometheus.Desc
	get func(*Stats) uint64
}

// NewCollector builds the collector for b.
func NewCollector(b *Balancer) *Collector {
	c := &Collector{b: b}
	add := func(name, help string, get func(*Stats) uint64) {
		c.counters = append(c.counters, counterDesc{prometheus.NewDesc("sipedge_sip_"+name+"_total", help, nil, nil), get})
	}
	add("messages_received", "SIP messages read from the sockets.", func(s *Stats) uint64 { return s.Received.Load() })
	add("queue_drops", "Messages dropped because their worker's queue was full.", func(s *Stats) uint64 { return s.QueueDrops.Load() })
	add("probe_timeouts_put_off", "OPTIONS probe timeouts not counted against a Core because the balancer itself was behind on the socket its reply comes to.", func(s *Stats) uint64 { return s.ProbesPutOff.Load() })
	add("attempt_timeouts_put_off", "Attempt timeouts toward a Core put off (by half of attempt_timeout, twice at most) because a Core's answer waited unread on the balancer's own Core side.", func(s *Stats) uint64 { return s.AttemptsPutOff.Load() })
	add("core_side_refused", "Datagrams on a Core-facing socket from neither a Core nor a trusted source, dropped.", func(s *Stats) uint64 { return s.TwinRefused.Load() })
	add("shed", "New INVITEs refused 503 at once because the workers were behind (admission control).", func(s *Stats) uint64 { return s.Shed.Load() })
	add("malformed", "Unparsable or invalid messages (answered 400 or dropped).", func(s *Stats) uint64 { return s.Malformed.Load() })
	add("too_large", "Messages over the size limit.", func(s *Stats) uint64 { return s.TooLarge.Load() })
	add("panics", "Panics recovered while handling a message.", func(s *Stats) uint64 { return s.Panics.Load() })
	add("requests_forwarded", "Requests forwarded.", func(s *Stats) uint64 { return s.Forwarded.Load() })
	add("retransmissions_absorbed", "Request retransmissions absorbed.", func(s *Stats) uint64 { return s.Retransmissions.Load() })
	add("stateless_acks_absorbed", "ACKs of the balancer's own stateless replies (shed 503s, refusals) absorbed at the reader.", func(s *Stats) uint64 { return s.StatelessAcks.Load() })
	add("retransmitted", "Requests retransmitted by the balancer's UDP timers.", func(s *Stats) uint64 { return s.Retransmitted.Load() })
	add("finals_retransmitted", "Non-2xx final responses to INVITE retransmitted to UDP callers that had not ACKed them (Timer G).", func(s *Stats) uint64 { return s.FinalsRetransmitted.Load() })
	add("finals_unacked", "INVITE transactions whose non-2xx final was never ACKed (Timer H).", func(s *Stats) uint64 { return s.FinalsUnacked.Load() })
	add("late_answers_ended", "2xx answers on call attempts already given up (attempt timer, Core down), ACKed and ended with BYE by the balancer.", func(s *Stats) uint64 { return s.LateAnswers.Load() })
	add("calls", "Initial INVITEs routed to a Core.", func(s *Stats) uint64 { return s.Calls.Load() })
	add("calls_answered", "Initial INVITEs answered 2xx.", func(s *Stats) uint64 { return s.Answered.Load() })
	add("failovers", "Call attempts moved to the next Core.", func(s *Stats) uint64 { return s.Failovers.Load() })
	add("attempt_timeouts", "Attempts a Core did not answer in time.", func(s *Stats) uint64 { return s.AttemptTimeouts.Load() })
	add("no_core", "Requests refused with 503: every Core full or down.", func(s *Stats) uint64 { return s.NoCore.Load() })
	add("dialogs_expired", "Dialogs ended by the dialog timer (BYE lost).", func(s *Stats) uint64 { return s.DialogsExpired.Load() })
	add("send_errors", "Socket send errors.", func(s *Stats) uint64 { return s.SendErrors.Load() })
	add("replies_4xx", "4xx responses sent to callers.", func(s *Stats) uint64 { return s.Replies4xx.Load() })
	add("replies_5xx", "5xx responses sent to callers.", func(s *Stats) uint64 { return s.Replies5xx.Load() })
	add("replies_503", "503 responses sent to callers (among the 5xx).", func(s *Stats) uint64 { return s.Replies503.Load() })
	core := []string{"core"}
	c.calls = prometheus.NewDesc("sipedge_sip_core_calls", "Confirmed calls on the Core (2xx to BYE).", core, nil)
	c.pending = prometheus.NewDesc("sipedge_sip_core_pending", "INVITEs in progress on the Core.", core, nil)
	c.state = prometheus.NewDesc("sipedge_sip_core_state", "1 for the Core's current state.", []string{"core", "state"}, nil)
	c.latency = prometheus.NewDesc("sipedge_sip_core_latency_seconds", "OPTIONS round-trip EWMA.", core, nil)
	c.routed = prometheus.NewDesc("sipedge_sip_core_routed_total", "Call attempts sent to the Core.", core, nil)
	c.answered = prometheus.NewDesc("sipedge_sip_core_answered_total", "Calls the Core answered 2xx.", core, nil)
	c.fail = prometheus.NewDesc("sipedge_sip_core_failovers_total", "Attempts moved away from the Core.", core, nil)
	c.tx = prometheus.NewDesc("sipedge_sip_transactions", "Live transactions.", []string{"side"}, nil)
	c.dialogs = prometheus.NewDesc("sipedge_sip_dialogs", "Dialogs in the table (early and confirmed).", nil, nil)
	c.reqs = prometheus.NewDesc("sipedge_sip_requests_total", "SIP requests read (in) and sent (out), by method.", []string{"direction", "method"}, nil)
	c.resps = prometheus.NewDesc("sipedge_sip_responses_total", "SIP responses read (in) and sent (out), by class.", []string{"direction", "class"}, nil)
	c.drops = prometheus.NewDesc("sipedge_sip_udp_kernel_drops", "Datagrams the kernel dropped on the balancer's UDP sockets (receive buffer full).", []string{"listen"}, nil)
	c.tcpOpen = prometheus.NewDesc("sipedge_sip_tcp_connections", "TCP connections open: accepted (in) and dialled to Cores (out).", []string{"direction"}, nil)
	c.tcpRef = prometheus.NewDesc("sipedge_sip_tcp_refused_total", "Inbound TCP connections closed at accept: max_connections or per_source cap reached, banned source.", []string{"reason"}, nil)
	c.tcpEnd = prometheus.NewDesc("sipedge_sip_tcp_closed_total", "TCP connections ended: idle timeout, message_timeout (a message not complete in time), malformed (framing lost), screened (a message from a banned source or a scanner), peer (closed by the peer between messages), local (a write failed, shutdown), silent (accepted and nothing sent within message_timeout: half-open), handshake (a TLS handshake failed or timed out), cut (closed by the peer in the middle of a message).", []string{"reason"}, nil)
	c.caps = prometheus.NewDesc("sipedge_sip_table_cap", "Cap of each table outside input grows (sip.caps): dialogs (sipedge_sip_dialogs), transactions (sipedge_sip_transactions{side=\"server\"}), branches ({side=\"client\"}); a tenth of it is kept for Cores and trusted sources.", []string{"table"}, nil)
	c.atCap = prometheus.NewDesc("sipedge_sip_at_cap_total", "Requests refused (503 with Retry-After, an ACK dropped) because a table was at its cap.", []string{"table"}, nil)
	c.refused = prometheus.NewDesc("sipedge_sip_relay_refused_total", "Messages from untrusted sources the routing policy (security.relay) did not forward: route (a new request routed elsewhere than the Cores: 403), unknown_dialog (481), direction (the callee's side from a stranger: 403), next_hop (not the dialog's: 403), ack and response (dropped).", []string{"reason"}, nil)
	c.tlsHS = prometheus.NewDesc("sipedge_sip_tls_handshakes_total", "TLS handshakes, accepted and dialled to Cores, by result: ok, timeout (not finished within sip.tls.handshake_timeout: a half-open client), verify (a certificate that failed verification), failed (any other error: a protocol error, a disconnect).", []string{"result"}, nil)
	c.group = prometheus.NewDesc("sipedge_sip_core_group_cores", "Cores a Core given by DNS name resolved to (its targets in the pool).", []string{"group"}, nil)
	c.stale = prometheus.NewDesc("sipedge_sip_core_group_stale", "1 while a Core given by DNS name no longer resolves and its last good answer is kept (2 once that ran out too and the group has no Cores).", []string{"group"}, nil)
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.counters {
		ch <- d.d
	}
	for _, d := range []*prometheus.Desc{c.calls, c.pending, c.state, c.latency, c.routed, c.answered, c.fail, c.tx, c.dialogs, c.drops, c.reqs, c.resps, c.tcpOpen, c.tcpRef, c.tcpEnd, c.caps, c.atCap, c.refused, c.group, c.stale, c.tlsHS} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for i, r := range tlsResults {
		ch <- prometheus.MustNewConstMetric(c.tlsHS, prometheus.CounterValue, float64(c.b.stats.TLSHandshakes[i].Load()), r)
	}
	for _, g := range c.b.CoreGroups() {
		stale := 0.0
		switch {
		case g.Dropped:
			stale = 2
		case g.Stale:
			stale = 1
		}
		ch <- prometheus.MustNewConstMetric(c.group, prometheus.GaugeValue, float64(len(g.Cores)), g.Name)
		ch <- prometheus.MustNewConstMetric(c.stale, prometheus.GaugeValue, stale, g.Name)
	}
	for _, d := range c.counters {
		ch <- prometheus.MustNewConstMetric(d.d, prometheus.CounterValue, float64(d.get(&c.b.stats)))
	}
	for _, s := range c.b.Cores() {
		ch <- prometheus.MustNewConstMetric(c.calls, prometheus.GaugeValue, float64(s.Calls), s.Name)
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(s.Pending), s.Name)
		ch <- prometheus.MustNewConstMetric(c.latency, prometheus.GaugeValue, s.LatencyMS/1000, s.Name)
		ch <- prometheus.MustNewConstMetric(c.routed, prometheus.CounterValue, float64(s.Routed), s.Name)
		ch <- prometheus.MustNewConstMetric(c.answered, prometheus.CounterValue, float64(s.Answered), s.Name)
		ch <- prometheus.MustNewConstMetric(c.fail, prometheus.CounterValue, float64(s.Failovers), s.Name)
		for _, st := range []State{StateActive, StateTrying, StateInactive, StateDisabled, StateDraining} {
			v := 0.0
			if s.State == st {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, v, s.Name, string(st))
		}
	}
	for dir, counts := range map[string]*msgCounts{"in": &c.b.stats.In, "out": &c.b.stats.Out} {
		for k := range counts {
			label, response := kindLabel(k)
			d := c.reqs
			if response {
				d = c.resps
			}
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(counts[k].Load()), dir, label)
		}
	}
	srv, cli := c.b.Transactions()
	ch <- prometheus.MustNewConstMetric(c.tx, prometheus.GaugeValue, float64(srv), "server")
	ch <- prometheus.MustNewConstMetric(c.tx, prometheus.GaugeValue, float64(cli), "client")
	ch <- prometheus.MustNewConstMetric(c.dialogs, prometheus.GaugeValue, float64(c.b.Dialogs()))
	in, out := c.b.TCPConnections()
	ch <- prometheus.MustNewConstMetric(c.tcpOpen, prometheus.GaugeValue, float64(in), "in")
	ch <- prometheus.MustNewConstMetric(c.tcpOpen, prometheus.GaugeValue, float64(out), "out")
	for i, r := range tcpRefusedReasons {
		ch <- prometheus.MustNewConstMetric(c.tcpRef, prometheus.CounterValue, float64(c.b.stats.TCPRefused[i].Load()), r)
	}
	for i, r := range tcpClosedReasons {
		ch <- prometheus.MustNewConstMetric(c.tcpEnd, prometheus.CounterValue, float64(c.b.stats.TCPClosed[i].Load()), r)
	}
	for i, t := range capReasons {
		limit := [...]int{c.b.opt.MaxDialogs, c.b.opt.MaxTransactions, c.b.opt.MaxBranches}[i]
		ch <- prometheus.MustNewConstMetric(c.caps, prometheus.GaugeValue, float64(limit), t)
		ch <- prometheus.MustNewConstMetric(c.atCap, prometheus.CounterValue, float64(c.b.stats.AtCap[i].Load()), t)
	}
	for i, r := range refusedReasons {
		ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(c.b.stats.Refused[i].Load()), r)
	}
	for listen, n := range c.b.KernelDrops() {
		ch <- prometheus.MustNewConstMetric(c.drops, prometheus.CounterValue, float64(n), listen)
	}
}

// KernelDrops returns, per UDP listener, the datagrams the kernel dropped
// for a full receive buffer (the drops column of /proc/net/udp{,6}).
// Empty where /proc is not available.
func (b *Balancer) KernelDrops() map[string]uint64 {
	out := map[string]uint64{}
	for _, l := range append(b.listeners[:len(b.listeners):len(b.listeners)], b.twins...) {
		if l.transport != "udp" {
			continue
		}
		if n, ok := l.kernelDrops(); ok {
			out["udp:"+l.addr.String()] = n
		}
	}
	return out
}

// kernelDrops is the kernel's count of datagrams dropped on l for a
// full receive buffer; false where /proc is not available.
func (l *listener) kernelDrops() (uint64, bool) {
	file := "/proc/net/udp"
	if l.addr.Addr().Is6() {
		file = "/proc/net/udp6"
	}
	n, err := udpDrops(file, l.addr.Addr().AsSlice(), l.addr.Port())
	return n, err == nil
}

// unread reports whether a datagram waits unread on l's UDP socket.
func (l *listener) unread() bool {
	rc, err := l.udp.SyscallConn()
	if err != nil {
		return false
	}
	var u bool
	rc.Control(func(fd uintptr) { u = unread(fd) })
	return u
}

func udpDrops(file string, ip []byte, port uint16) (uint64, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	// /proc prints the address as the in-memory words in host order (hex
	// of each 32-bit word, little endian on x86).
	var want strings.Builder
	for i := 0; i+4 <= len(ip); i += 4 {
		fmt.Fprintf(&want, "%02X%02X%02X%02X", ip[i+3], ip[i+2], ip[i+1], ip[i])
	}
	local := fmt.Sprintf("%s:%04X", want.String(), port)
	var total uint64
	found := false
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 13 || f[1] != local {
			continue
		}
		n, err := strconv.ParseUint(f[len(f)-1], 10, 64)
		if err == nil {
			total += n
			found = true
		}
	}
	if !found {
		return 0, fmt.Errorf("%s: no socket %s", file, local)
	}
	return total, nil
}
