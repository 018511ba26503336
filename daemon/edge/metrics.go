package edge

import "github.com/prometheus/client_golang/prometheus"

// Collector exports a Guard's counters to Prometheus.
type Collector struct {
	g                                *Guard
	bans, drops, refusals, evictions *prometheus.Desc
	banned, tracked, saveFailures    *prometheus.Desc
}

// NewCollector returns the Prometheus collector of g.
func NewCollector(g *Guard) *Collector {
	return &Collector{
		g:            g,
		bans:         prometheus.NewDesc("sipedge_edge_bans_total", "Sources banned, by reason.", []string{"reason"}, nil),
		drops:        prometheus.NewDesc("sipedge_edge_drops_total", "Messages dropped silently at the edge, by reason (banned, scanner).", []string{"reason"}, nil),
		refusals:     prometheus.NewDesc("sipedge_edge_refusals_total", "Requests refused at the edge with a response, by reason (untrusted: 403).", []string{"reason"}, nil),
		evictions:    prometheus.NewDesc("sipedge_edge_evictions_total", "Entries evicted from a full table (sources: rate tracking, bans).", []string{"table"}, nil),
		banned:       prometheus.NewDesc("sipedge_edge_banned_sources", "Bans in force.", nil, nil),
		tracked:      prometheus.NewDesc("sipedge_edge_tracked_sources", "Sources whose request rate is tracked.", nil, nil),
		saveFailures: prometheus.NewDesc("sipedge_edge_ban_save_failures_total", "Failed writes of the ban table to the store.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.bans, c.drops, c.refusals, c.evictions, c.banned, c.tracked, c.saveFailures} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	g := c.g
	cnt := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	cnt(c.bans, g.c.bans.Load(), ReasonFlood)
	cnt(c.drops, g.c.dropBanned.Load(), "banned")
	cnt(c.drops, g.c.dropScanner.Load(), "scanner")
	cnt(c.refusals, g.c.refused.Load(), "untrusted")
	cnt(c.evictions, g.tab.evicted.Load(), "sources")
	cnt(c.evictions, g.tab.banEvicted.Load(), "bans")
	cnt(c.saveFailures, g.c.saveFailed.Load())
	ch <- prometheus.MustNewConstMetric(c.banned, prometheus.GaugeValue, float64(g.tab.banCount()))
	ch <- prometheus.MustNewConstMetric(c.tracked, prometheus.GaugeValue, float64(g.tab.tracked()))
}

// Counts returns the counters by name (for status and tests).
func (g *Guard) Counts() map[string]uint64 {
	return map[string]uint64{
		"bans": g.c.bans.Load(), "dropped_banned": g.c.dropBanned.Load(), "dropped_scanner": g.c.dropScanner.Load(),
		"refused_untrusted": g.c.refused.Load(), "evicted_sources": g.tab.evicted.Load(), "evicted_bans": g.tab.banEvicted.Load(),
		"ban_save_failures": g.c.saveFailed.Load(), "banned": uint64(g.tab.banCount()), "tracked": uint64(g.tab.tracked()),
	}
}
