package config

import (
	"strings"
	"testing"
	"time"
)

func TestTimeSection(t *testing.T) {
	if c := Default(); len(c.Time.NTP) != 0 || c.Console.LoginOn() {
		t.Errorf("embedded default: time %+v, console login %v; want no NTP and no console login (a workstation)", c.Time, c.Console.LoginOn())
	}
	const sip = "sip:\n  listen: [\"udp:127.0.0.1:5060\"]\n"
	c, err := Parse("t.yaml", []byte(sip+"time: {ntp: [192.0.2.1, \"198.51.100.2:10123\"]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Time; got.Poll.D() != 64*time.Second || got.StepThreshold.D() != time.Second || got.Panic.D() != 1000*time.Second || !got.AdjustOn() {
		t.Errorf("defaults: %+v", got)
	}
	if !c.Console.LoginOn() || !c.Console.RecoveryOn() || c.Console.IdleLogout.D() != 10*time.Minute {
		t.Errorf("console defaults for a file: %+v", c.Console)
	}
	b, err := Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if c2, err := Parse("shown", b); err != nil || len(c2.Time.NTP) != 2 || c2.Time.Poll != c.Time.Poll {
		t.Errorf("round trip: %v\n%s", err, b)
	}
	for _, tt := range []struct{ yaml, want string }{
		{"time: {ntp: [pool.ntp.org]}", `t.yaml:3: time.ntp[0]: "pool.ntp.org": want an IP address`},
		{"time: {ntp: [\"192.0.2.1:0\"]}", `t.yaml:3: time.ntp[0]: "192.0.2.1:0": port 0`},
		{"time: {ntp: [192.0.2.1, \"192.0.2.1:123\"]}", `t.yaml:3: time.ntp[1]: "192.0.2.1:123" is listed twice`},
		{"time: {ntp: [0.0.0.0]}", `t.yaml:3: time.ntp[0]: "0.0.0.0": want a server's address`},
		{"time: {ntp: [192.0.2.1], poll: 100ms}", "t.yaml:3: time.poll: 100ms is outside 1s..36h"},
		{"time: {ntp: [192.0.2.1], step_threshold: 10s, panic: 5s}", "t.yaml:3: time.panic: 5s is below time.step_threshold (10s)"},
		{"time: {ntp: [1.0.0.1, 1.0.0.2, 1.0.0.3, 1.0.0.4, 1.0.0.5, 1.0.0.6, 1.0.0.7, 1.0.0.8, 1.0.0.9]}", "t.yaml:3: time.ntp: 9 servers: at most 8"},
		{"console: {idle_logout: 1s}", "t.yaml:3: console.idle_logout: 1s is outside 10s..24h"},
	} {
		_, err := Parse("t.yaml", []byte(sip+tt.yaml+"\n"))
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err = %v, want one problem starting %q", tt.yaml, err, tt.want)
		}
	}
}
