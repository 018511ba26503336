package failover

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the failover collectors. A nil *Metrics records nothing.
type Metrics struct {
	state       *prometheus.GaugeVec
	priority    *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	garps       *prometheus.CounterVec
	hbSent      prometheus.Counter
	hbSendErr   prometheus.Counter
	hbReceived  prometheus.Counter
	hbRejected  *prometheus.CounterVec
	placement   *prometheus.GaugeVec
}

var allStates = []State{StateInit, StateBackup, StateMaster, StateFault, StateStopped}

// NewMetrics creates the collectors and registers them on reg (if not
// nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "sipedge", Subsystem: "vip", Name: "state",
			Help: "1 for the current state of each VIP group, 0 for the others.",
		}, []string{"group", "state"}),
		priority: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "sipedge", Subsystem: "vip", Name: "priority",
			Help: "Effective priority of each VIP group (after health penalties; 0 in fault).",
		}, []string{"group"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sipedge", Subsystem: "vip", Name: "transitions_total",
			Help: "VIP state transitions.",
		}, []string{"group", "from", "to"}),
		garps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sipedge", Subsystem: "vip", Name: "announcements_sent_total",
			Help: "Gratuitous ARPs / unsolicited neighbour advertisements sent.",
		}, []string{"group"}),
		hbSent: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "sipedge", Subsystem: "heartbeat", Name: "sent_total",
			Help: "Heartbeats sent (one per peer address counts once).",
		}),
		hbSendErr: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "sipedge", Subsystem: "heartbeat", Name: "send_errors_total",
			Help: "Heartbeats that could not be sent.",
		}),
		hbReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "sipedge", Subsystem: "heartbeat", Name: "received_total",
			Help: "Heartbeats received and accepted.",
		}),
		hbRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sipedge", Subsystem: "heartbeat", Name: "rejected_total",
			Help: "Heartbeats rejected, by reason (unknown_source, malformed, version, bad_mac, replayed, stale, self, unproven).",
		}, []string{"reason"}),
		placement: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "sipedge", Subsystem: "vip", Name: "placement_ok",
			Help: "1 if the last VIP placement check passed (the peer answers ARP on the VIP's segment, its gratuitous ARP is heard), 0 if not; absent before the first check.",
		}, []string{"group"}),
	}
	for _, r := range []string{RejectUnknownSource, RejectMalformed, RejectVersion, RejectBadMAC, RejectReplayed, RejectStale, RejectSelf, RejectUnproven} {
		m.hbRejected.WithLabelValues(r)
	}
	if reg != nil {
		m.state = register(reg, m.state)
		m.priority = register(reg, m.priority)
		m.transitions = register(reg, m.transitions)
		m.garps = register(reg, m.garps)
		m.hbSent = register(reg, m.hbSent)
		m.hbSendErr = register(reg, m.hbSendErr)
		m.hbReceived = register(reg, m.hbReceived)
		m.hbRejected = register(reg, m.hbRejected)
		m.placement = register(reg, m.placement)
	}
	return m
}

// register registers c on reg, or returns the collector already
// registered under the same name (a daemon restarted in one process).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(C); ok {
				return old
			}
		}
	}
	return c
}

func (m *Metrics) setState(group string, s State) {
	if m == nil {
		return
	}
	for _, st := range allStates {
		v := 0.0
		if st == s {
			v = 1
		}
		m.state.WithLabelValues(group, st.String()).Set(v)
	}
}

func (m *Metrics) setPriority(group string, p int) {
	if m != nil {
		m.priority.WithLabelValues(group).Set(float64(p))
	}
}

func (m *Metrics) transition(group string, from, to State) {
	if m != nil {
		m.transitions.WithLabelValues(group, from.String(), to.String()).Inc()
	}
}

func (m *Metrics) garp(group string) {
	if m != nil {
		m.garps.WithLabelValues(group).Inc()
	}
}

func (m *Metrics) sent() {
	if m != nil {
		m.hbSent.Inc()
	}
}

func (m *Metrics) sendError() {
	if m != nil {
		m.hbSendErr.Inc()
	}
}

func (m *Metrics) received() {
	if m != nil {
		m.hbReceived.Inc()
	}
}

func (m *Metrics) rejected(reason string) {
	if m != nil {
		m.hbRejected.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) setPlacement(group string, ok bool) {
	if m != nil {
		v := 0.0
		if ok {
			v = 1
		}
		m.placement.WithLabelValues(group).Set(v)
	}
}
