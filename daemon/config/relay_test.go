package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestRelayAndCaps: security.relay defaults to dialogs (closed); open is
// accepted, flagged in Warnings and at the head of Marshal (`ctl config
// show`); anything else is refused. The sip.caps defaults and bounds.
func TestRelayAndCaps(t *testing.T) {
	c, err := Parse("default.yaml", []byte("sip:\n  listen: [\"udp:127.0.0.1:5060\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Security.Relay != "dialogs" || len(c.Unsafe()) != 0 {
		t.Errorf("default relay %q, warnings %v", c.Security.Relay, c.Unsafe())
	}
	want := Caps{Dialogs: 150_000, Transactions: 200_000, Branches: 200_000, SessionExpires: Duration(2 * time.Hour)}
	if c.SIP.Caps != want {
		t.Errorf("caps %+v, want %+v", c.SIP.Caps, want)
	}
	if b, _ := Marshal(c); strings.Contains(string(b), "WARNING") {
		t.Errorf("default config shown with a warning:\n%s", b)
	}

	open, err := Parse("open.yaml", []byte("sip:\n  listen: [\"udp:127.0.0.1:5060\"]\nsecurity:\n  relay: open\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Marshal(open)
	if err != nil {
		t.Fatal(err)
	}
	if len(open.Unsafe()) != 1 || !strings.HasPrefix(string(b), "# WARNING: security.relay: open makes the balancer an open relay") {
		t.Errorf("open relay not flagged: %v\n%s", open.Unsafe(), b)
	}
	if again, err := Parse("shown", b); err != nil || again.Security.Relay != "open" {
		t.Errorf("shown config does not parse back: %v", err)
	}

	for _, bad := range []string{
		"security:\n  relay: closed\n",
		"sip:\n  listen: [\"udp:127.0.0.1:5060\"]\n  caps: {dialogs: 10}\n",
		"sip:\n  listen: [\"udp:127.0.0.1:5060\"]\n  caps: {session_expires: 10s}\n",
	} {
		if _, err := Parse("bad.yaml", []byte("sip:\n  listen: [\"udp:127.0.0.1:5060\"]\n"+strings.TrimPrefix(bad, "sip:\n  listen: [\"udp:127.0.0.1:5060\"]\n"))); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// TestZeroMeansZero (issue 18 item 7): a wait written as 0 is no wait
// (stable_for, garp.repeat_after, handover_relay), left out it is the
// default; a field that may not be zero, written as 0, keeps the default
// as before but under a warning naming it (config validate fails).
func TestZeroMeansZero(t *testing.T) {
	const head = "node: {profile: four-box}\ncluster: {listen: \"192.0.2.11:694\", peer: \"192.0.2.12:694\", %s}\nvips:\n  - {name: sip, address: 192.0.2.10/24, interface: eth0, role: main, track: [{tcp: \"127.0.0.1:3306\"}], %s}\n"
	c, err := Parse("zero.yaml", fmt.Appendf(nil, head, "handover_relay: 0s", "failback: {stable_for: 0s}, garp: {repeat_after: 0s}"))
	if err != nil {
		t.Fatal(err)
	}
	v := c.VIPs[0]
	if v.Failback.StableFor != 0 || v.GARP.RepeatAfter != 0 || c.Cluster.HandoverRelay != 0 {
		t.Errorf("zero not kept: stable_for %v, repeat_after %v, handover_relay %v", v.Failback.StableFor, v.GARP.RepeatAfter, c.Cluster.HandoverRelay)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings for zeros that make sense: %v", c.Warnings)
	}
	c, err = Parse("absent.yaml", fmt.Appendf(nil, head, "interval: 1s", "priority: 150"))
	if err != nil {
		t.Fatal(err)
	}
	v = c.VIPs[0]
	if v.Failback.StableFor.D() != 5*time.Second || v.GARP.RepeatAfter.D() != 5*time.Second || c.Cluster.HandoverRelay.D() != 3*time.Second {
		t.Errorf("defaults lost: stable_for %v, repeat_after %v, handover_relay %v", v.Failback.StableFor, v.GARP.RepeatAfter, c.Cluster.HandoverRelay)
	}
	c, err = Parse("old.yaml", fmt.Appendf(nil, head, "interval: 0s", "deadtime: 0s, initdead: 0s, garp: {count: 0}"))
	if err != nil {
		t.Fatalf("a file that worked is refused: %v", err)
	}
	if c.VIPs[0].Deadtime.D() != 10*time.Second || c.Cluster.Interval.D() != time.Second || c.VIPs[0].GARP.Count != 5 {
		t.Errorf("old meaning of 0 lost: %+v %+v", c.VIPs[0], c.Cluster)
	}
	got := c.Warnings.Error()
	for _, f := range []string{"cluster.interval", "vips[0].deadtime", "vips[0].initdead", "vips[0].garp.count"} {
		if !strings.Contains(got, f+": may not be zero") {
			t.Errorf("no warning for %s in:\n%s", f, got)
		}
	}
	c, err = Parse("sip.yaml", []byte("sip:\n  listen: [\"udp:127.0.0.1:5060\"]\n  probe: {interval: 0s}\n  cores: [{name: c1, address: \"127.0.0.1:5070\", weight: 0, max_calls: 0}]\nsecurity: {flood: {requests: 0}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.SIP.Probe.Interval.D() != 5*time.Second || c.SIP.Cores[0].Weight != 1 || c.Security.Flood.Requests != 0 {
		t.Errorf("old meanings lost: probe %v, weight %d, flood requests %d", c.SIP.Probe.Interval, c.SIP.Cores[0].Weight, c.Security.Flood.Requests)
	}
	got = c.Warnings.Error()
	if !strings.Contains(got, "sip.probe.interval: may not be zero") || !strings.Contains(got, "sip.cores[0].weight: may not be zero") || strings.Contains(got, "max_calls") || strings.Contains(got, "flood.requests") {
		t.Errorf("warnings:\n%s", got)
	}
}

// TestNonZeroFieldsExist: every field the zero rule names is a field of
// the file (a typo would silently check nothing).
func TestNonZeroFieldsExist(t *testing.T) {
	for _, f := range nonZeroFields {
		typ := reflect.TypeFor[Config]()
		for _, part := range strings.Split(f.path, ".") {
			name, _, list := strings.Cut(part, "[")
			found := false
			for typ.Kind() == reflect.Pointer {
				typ = typ.Elem()
			}
			for i := range typ.NumField() {
				if tag, _, _ := strings.Cut(typ.Field(i).Tag.Get("yaml"), ","); tag == name {
					typ, found = typ.Field(i).Type, true
					break
				}
			}
			if !found {
				t.Errorf("%s: no field %q", f.path, name)
				break
			}
			if list {
				typ = typ.Elem()
			}
		}
	}
}
