package timesync

import "github.com/prometheus/client_golang/prometheus"

// Collector exports the syncer's state to Prometheus.
type Collector struct {
	s                                     *Syncer
	synced, offset, lastSync, stratum     *prometheus.Desc
	polls, steps, slews, errors, panicked *prometheus.Desc
}

// NewCollector builds the collector for s.
func NewCollector(s *Syncer) *Collector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("sipedge_time_"+name, help, nil, nil)
	}
	return &Collector{s: s,
		synced:   d("synced", "1 while the last NTP poll succeeded."),
		offset:   d("offset_seconds", "Clock offset measured by the last good poll, before it was corrected (server minus local)."),
		lastSync: d("last_sync_timestamp_seconds", "When the last good poll was (unix seconds; 0: never)."),
		stratum:  d("stratum", "Stratum of the server of the last good poll."),
		polls:    d("polls_total", "NTP polls (each asks every configured server)."),
		steps:    d("steps_total", "Times the clock was stepped."),
		slews:    d("slews_total", "Times the clock was slewed."),
		errors:   d("errors_total", "Polls that did not correct the clock (no usable answer, refused offset, clock not settable)."),
		panicked: d("panic", "1 while the last answer was beyond time.panic and refused."),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.synced, c.offset, c.lastSync, c.stratum, c.polls, c.steps, c.slews, c.errors, c.panicked} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Status()
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	last := 0.0
	if st.LastSync != nil {
		last = float64(st.LastSync.UnixNano()) / 1e9
	}
	g := prometheus.GaugeValue
	ch <- prometheus.MustNewConstMetric(c.synced, g, b(st.Synced))
	ch <- prometheus.MustNewConstMetric(c.offset, g, st.OffsetSeconds)
	ch <- prometheus.MustNewConstMetric(c.lastSync, g, last)
	ch <- prometheus.MustNewConstMetric(c.stratum, g, float64(st.Stratum))
	ch <- prometheus.MustNewConstMetric(c.panicked, g, b(st.Panic))
	for d, v := range map[*prometheus.Desc]uint64{c.polls: st.Polls, c.steps: st.Steps, c.slews: st.Slews, c.errors: st.Errors} {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
}
