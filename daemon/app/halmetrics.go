package app

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipedge/sipedge/daemon/watchdog"
)

// bondCollector exports the bonds' and their slaves' link states, read
// back through the HAL at each scrape (the same view as `ctl network`).
type bondCollector struct {
	ns                  *netState
	bondUp, slaveUp, ac *prometheus.Desc
}

func newBondCollector(ns *netState) *bondCollector {
	return &bondCollector{
		ns:      ns,
		bondUp:  prometheus.NewDesc("sipedge_bond_up", "Whether the bond is operationally up (1) or not (0).", []string{"bond"}, nil),
		slaveUp: prometheus.NewDesc("sipedge_bond_slave_mii_up", "Whether the bond slave's MII link is up (1) or not (0).", []string{"bond", "slave"}, nil),
		ac:      prometheus.NewDesc("sipedge_bond_slave_active", "Whether the slave is the bond's active slave (1) or not (0).", []string{"bond", "slave"}, nil),
	}
}

func (c *bondCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.bondUp
	ch <- c.slaveUp
	ch <- c.ac
}

func (c *bondCollector) Collect(ch chan<- prometheus.Metric) {
	bonds, _ := c.ns.bondViews()
	for _, b := range bonds {
		ch <- prometheus.MustNewConstMetric(c.bondUp, prometheus.GaugeValue, b01(b.Up), b.Name)
		for _, s := range b.Slaves {
			ch <- prometheus.MustNewConstMetric(c.slaveUp, prometheus.GaugeValue, b01(s.MIIUp), b.Name, s.Name)
			ch <- prometheus.MustNewConstMetric(c.ac, prometheus.GaugeValue, b01(s.Active), b.Name, s.Name)
		}
	}
}

// watchdogCollector exports the watchdog policy's feeds and state.
type watchdogCollector struct {
	p                                *watchdog.Policy
	feeds, armed, withholding, reset *prometheus.Desc
}

func newWatchdogCollector(p *watchdog.Policy) *watchdogCollector {
	return &watchdogCollector{
		p:           p,
		feeds:       prometheus.NewDesc("sipedge_watchdog_keepalives_total", "Keepalives written to the hardware watchdog.", nil, nil),
		armed:       prometheus.NewDesc("sipedge_watchdog_armed", "Whether the hardware watchdog is armed (1) or not (0).", nil, nil),
		withholding: prometheus.NewDesc("sipedge_watchdog_withholding", "1 while keepalives are withheld because a subsystem is stale: the board resets unless it recovers.", nil, nil),
		reset:       prometheus.NewDesc("sipedge_watchdog_last_reset_by_watchdog", "1 if the previous boot ended in a watchdog reset.", nil, nil),
	}
}

func (c *watchdogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.feeds
	ch <- c.armed
	ch <- c.withholding
	ch <- c.reset
}

func (c *watchdogCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.p.Status()
	ch <- prometheus.MustNewConstMetric(c.feeds, prometheus.CounterValue, float64(st.Keepalives))
	ch <- prometheus.MustNewConstMetric(c.armed, prometheus.GaugeValue, b01(st.Armed))
	ch <- prometheus.MustNewConstMetric(c.withholding, prometheus.GaugeValue, b01(st.Withholding))
	ch <- prometheus.MustNewConstMetric(c.reset, prometheus.GaugeValue, b01(st.LastResetByWatchdog))
}

func b01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
