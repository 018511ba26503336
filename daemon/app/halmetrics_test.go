package app

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sipedge/sipedge/daemon/liveness"
	"github.com/sipedge/sipedge/daemon/watchdog"
	"github.com/sipedge/sipedge/hal"
)

func TestBondMetrics(t *testing.T) {
	f := hal.NewFake("eth0", "eth1")
	if err := f.CreateBond(hal.BondConfig{Name: "bond0", Mode: hal.BondActiveBackup, MIIMon: 100 * time.Millisecond, Primary: "eth0", Slaves: []string{"eth0", "eth1"}}); err != nil {
		t.Fatal(err)
	}
	c := newBondCollector(&netState{hal: f, bonds: []string{"bond0"}})
	want := func(eth0Up, eth0Active, eth1Active string) string {
		return `
# HELP sipedge_bond_slave_active Whether the slave is the bond's active slave (1) or not (0).
# TYPE sipedge_bond_slave_active gauge
sipedge_bond_slave_active{bond="bond0",slave="eth0"} ` + eth0Active + `
sipedge_bond_slave_active{bond="bond0",slave="eth1"} ` + eth1Active + `
# HELP sipedge_bond_slave_mii_up Whether the bond slave's MII link is up (1) or not (0).
# TYPE sipedge_bond_slave_mii_up gauge
sipedge_bond_slave_mii_up{bond="bond0",slave="eth0"} ` + eth0Up + `
sipedge_bond_slave_mii_up{bond="bond0",slave="eth1"} 1
`
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want("1", "1", "0")), "sipedge_bond_slave_mii_up", "sipedge_bond_slave_active"); err != nil {
		t.Fatal(err)
	}
	// The active slave loses its carrier: the metrics follow the bond.
	f.SetCarrier("eth0", false)
	if err := testutil.CollectAndCompare(c, strings.NewReader(want("0", "0", "1")), "sipedge_bond_slave_mii_up", "sipedge_bond_slave_active"); err != nil {
		t.Fatal(err)
	}
}

func TestWatchdogMetrics(t *testing.T) {
	reg := liveness.New()
	reg.Register("sip", time.Second)
	dev := hal.NewFakeWatchdog(10*time.Second, true)
	now := time.Now()
	p, err := watchdog.New(watchdog.Options{Device: dev, Health: reg, BootReset: true, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	p.Tick()
	p.Tick()
	c := newWatchdogCollector(p)
	if got := testutil.ToFloat64(collectOne(c, "sipedge_watchdog_keepalives_total")); got != 2 {
		t.Errorf("keepalives = %v, want 2", got)
	}
	if got := testutil.ToFloat64(collectOne(c, "sipedge_watchdog_last_reset_by_watchdog")); got != 1 {
		t.Errorf("last reset by watchdog = %v, want 1", got)
	}
	now = now.Add(5 * time.Second) // "sip" is stale: feeding stops
	p.Tick()
	if got := testutil.ToFloat64(collectOne(c, "sipedge_watchdog_withholding")); got != 1 {
		t.Errorf("withholding = %v, want 1", got)
	}
	if got := testutil.ToFloat64(collectOne(c, "sipedge_watchdog_keepalives_total")); got != 2 {
		t.Errorf("keepalives after a stale subsystem = %v, want still 2", got)
	}
}

// collectOne returns a collector yielding only the metric named name.
func collectOne(c prometheus.Collector, name string) prometheus.Collector {
	return filtered{c, name}
}

type filtered struct {
	c    prometheus.Collector
	name string
}

func (f filtered) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(f, ch) }

func (f filtered) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric, 16)
	go func() { f.c.Collect(all); close(all) }()
	for m := range all {
		if strings.Contains(m.Desc().String(), `"`+f.name+`"`) {
			ch <- m
		}
	}
}
