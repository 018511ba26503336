package replica

import "github.com/prometheus/client_golang/prometheus"

// Collector exports the channel's state to Prometheus.
type Collector struct {
	r        *Replica
	up       *prometheus.Desc
	active   *prometheus.Desc
	lag      *prometheus.Desc
	dialogs  *prometheus.Desc
	pending  *prometheus.Desc
	counters map[string]*prometheus.Desc
}

// NewCollector builds the collector for r.
func NewCollector(r *Replica) *Collector {
	c := &Collector{r: r,
		up:       prometheus.NewDesc("sipedge_replication_connected", "1 while a replication session with the peer runs.", nil, nil),
		active:   prometheus.NewDesc("sipedge_replication_active", "1 when this box streams (holds the SIP VIP), 0 when it mirrors.", nil, nil),
		lag:      prometheus.NewDesc("sipedge_replication_lag_seconds", "Active: send to acknowledgement of the last acknowledged frame; standby: age of the last frame at arrival.", nil, nil),
		dialogs:  prometheus.NewDesc("sipedge_replication_dialogs", "Dialogs in this box's table (on the standby: mirrored from the peer).", nil, nil),
		pending:  prometheus.NewDesc("sipedge_replication_events_pending", "Dialog events gathered and not yet sent.", nil, nil),
		counters: map[string]*prometheus.Desc{},
	}
	for _, k := range counterNames {
		c.counters[k] = prometheus.NewDesc("sipedge_replication_"+k+"_total", counterHelp[k], nil, nil)
	}
	return c
}

var counterNames = []string{"sessions", "connect_errors", "refused", "events_sent", "frames_sent", "bytes_sent", "snapshots_sent", "resyncs",
	"events_applied", "snapshots_applied", "core_updates", "unknown_core", "rejected_bad_mac", "rejected_sequence", "rejected_malformed",
	"rejected_oversize", "rejected_source", "superseded"}

var counterHelp = map[string]string{
	"sessions":           "Replication sessions established (either direction).",
	"connect_errors":     "Connections or handshakes that failed.",
	"refused":            "Sessions refused because both boxes held the VIP.",
	"events_sent":        "Dialog events streamed to the peer.",
	"frames_sent":        "Frames streamed to the peer.",
	"bytes_sent":         "Bytes streamed to the peer.",
	"snapshots_sent":     "Snapshots sent (one per session).",
	"resyncs":            "Sessions dropped to resynchronise because too many events waited.",
	"events_applied":     "Dialog events applied from the peer.",
	"snapshots_applied":  "Snapshots applied from the peer.",
	"core_updates":       "Core pool updates applied from the peer.",
	"unknown_core":       "Mirrored dialogs that named a Core this box does not have.",
	"rejected_bad_mac":   "Frames or handshakes with a bad HMAC.",
	"rejected_sequence":  "Frames out of sequence (replayed, dropped or reordered).",
	"rejected_malformed": "Malformed frames or handshakes.",
	"rejected_oversize":  "Frames longer than allowed at their point of the session (a hello over its size), closed before anything was allocated for them.",
	"rejected_source":    "Connections from an address other than the peer's, closed before anything was read.",
	"superseded":         "Connections from the peer's address replaced, before they proved the session key, by a newer one.",
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.active
	ch <- c.lag
	ch <- c.dialogs
	ch <- c.pending
	for _, d := range c.counters {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.r.Status()
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, b(st.Connected))
	ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, b(st.Role == "active"))
	ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, st.LagMS/1e3)
	ch <- prometheus.MustNewConstMetric(c.dialogs, prometheus.GaugeValue, float64(st.Dialogs))
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(st.Pending))
	for k, d := range c.counters {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(st.Counters[k]))
	}
}
