package web_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sipedge/sipedge/hal/testenv"
)

// TestMetrics scrapes /metrics of the real binary and parses it with the
// Prometheus text parser.
func TestMetrics(t *testing.T) {
	testenv.Short(t, "starts the daemon")
	c := startCore(t)
	d := startDaemon(t, c)
	d.ctl("metrics password 1\n", "web", "password")
	// One failed login shows in the web's own counter.
	hc := d.http
	resp, err := hc.Get(d.web + "/api/session")
	if err != nil {
		t.Fatal(err)
	}
	var sess struct{ CSRF string }
	json.NewDecoder(resp.Body).Decode(&sess)
	resp.Body.Close()
	req, _ := http.NewRequest("POST", d.web+"/api/login", strings.NewReader(`{"password":"wrong password"}`))
	req.Header.Set("X-CSRF-Token", sess.CSRF)
	if resp, err = hc.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("bad login: %s, want 401", resp.Status)
	}

	scrape := d.scrape
	// The balancer's OPTIONS probes go out and the Core's 200s come in:
	// SIP messages by method and by response class.
	var fams map[string]*dto.MetricFamily
	waitFor(t, "probe messages counted by method and class", 5*time.Second, func() bool {
		fams = scrape()
		return counter2(fams, "sipedge_sip_requests_total", "direction", "out", "method", "OPTIONS") > 0 &&
			counter2(fams, "sipedge_sip_responses_total", "direction", "in", "class", "2xx") > 0
	})
	if n := counter2(fams, "sipedge_sip_requests_total", "direction", "in", "method", "INVITE"); n != 0 {
		t.Errorf("INVITEs in = %v with no caller", n)
	}
	bi := fams["sipedge_build_info"]
	if bi == nil || len(bi.Metric) != 1 || bi.Metric[0].GetGauge().GetValue() != 1 {
		t.Fatalf("sipedge_build_info missing or not 1: %v", bi)
	}
	labels := map[string]string{}
	for _, l := range bi.Metric[0].Label {
		labels[l.GetName()] = l.GetValue()
	}
	if labels["version"] == "" || !strings.HasPrefix(labels["goversion"], "go") {
		t.Errorf("build info labels = %v", labels)
	}
	for _, name := range []string{"sipedge_start_time_seconds", "go_goroutines", "sipedge_sip_core_state"} {
		if fams[name] == nil {
			t.Errorf("metric %s missing", name)
		}
	}
	if got := counter(fams, "sipedge_web_logins_total", "result", "bad_password"); got != 1 {
		t.Errorf("sipedge_web_logins_total{result=bad_password} = %v, want 1", got)
	}
	if st := fams["sipedge_sip_core_state"]; st != nil {
		found := false
		for _, m := range st.Metric {
			for _, l := range m.Label {
				if l.GetName() == "core" && l.GetValue() == "core1" {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("sipedge_sip_core_state has no series for core1")
		}
	}
}

// scrape reads and parses the daemon's /metrics.
func (d *daemon) scrape() map[string]*dto.MetricFamily {
	d.t.Helper()
	resp, err := d.http.Get(d.web + "/metrics")
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		d.t.Fatalf("/metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		d.t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// counter2 is the counter of family name whose labels l1=v1 and l2=v2.
func counter2(fams map[string]*dto.MetricFamily, name, l1, v1, l2, v2 string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		if got[l1] == v1 && got[l2] == v2 {
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

func counter(fams map[string]*dto.MetricFamily, name, label, value string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	for _, m := range f.Metric {
		for _, l := range m.Label {
			if l.GetName() == label && l.GetValue() == value {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
