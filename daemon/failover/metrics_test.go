package failover

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	met := NewMetrics(reg)
	if again := NewMetrics(reg); again.hbSent != met.hbSent {
		t.Error("second NewMetrics on one registry did not reuse the collectors")
	}
	s, a, b := pair(t, nil)
	a.opt.Metrics = met
	s.kill(a, false)
	s.boot(a) // A now reports to met
	s.run(2 * time.Second)
	a.m.receive([]byte("junk"), "x", s.clock.now)
	_ = b
	for reason, want := range map[string]float64{"malformed": 1, "bad_mac": 0, "replayed": 0} {
		if v := gauge(t, reg, "sipedge_heartbeat_rejected_total", "reason", reason); v != want {
			t.Errorf("rejected{%s} = %v, want %v", reason, v, want)
		}
	}
	if v := gauge(t, reg, "sipedge_vip_state", "group", "sip", "state", "master"); v != 1 {
		t.Errorf("state{master} = %v after failback", v)
	}
	if v := gauge(t, reg, "sipedge_vip_transitions_total", "group", "sip", "from", "backup", "to", "master"); v != 1 {
		t.Errorf("transitions backup->master = %v", v)
	}
	if v := gauge(t, reg, "sipedge_heartbeat_sent_total"); v < 15 {
		t.Errorf("heartbeats sent %v in 2 s at 100 ms", v)
	}
	if v := gauge(t, reg, "sipedge_heartbeat_received_total"); v < 15 {
		t.Errorf("heartbeats received %v in 2 s at 100 ms", v)
	}
	if v := gauge(t, reg, "sipedge_vip_announcements_sent_total", "group", "sip"); v != 3 {
		t.Errorf("announcements %v, want 3", v)
	}
}

// gauge returns the value of the sample of family name whose labels
// include the given name/value pairs.
func gauge(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no sample %s%v", name, labels)
	return 0
}
