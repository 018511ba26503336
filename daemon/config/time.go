package config

import (
	"fmt"
	"net/netip"
	"time"
)

// Time is the SNTP client (daemon/timesync) that keeps the wall clock
// on time: the heartbeats, the event log and the web sessions read it.
type Time struct {
	// NTP are the servers: literal IP addresses, optionally with :port
	// (names are not resolved: the firmware has no DNS settings yet).
	// Empty: no time sync.
	NTP []string `yaml:"ntp"`
	// Poll is the interval between polls (default 64s).
	Poll Duration `yaml:"poll"`
	// StepThreshold: a larger offset is stepped, a smaller one slewed
	// (default 1s).
	StepThreshold Duration `yaml:"step_threshold"`
	// Panic: after the first sync since start, a larger offset is
	// refused and raised (default 1000s, as ntpd).
	Panic Duration `yaml:"panic"`
	// Adjust false only measures the offset (default true).
	Adjust *bool `yaml:"adjust"`
}

// AdjustOn reports whether the clock is corrected (the default).
func (t Time) AdjustOn() bool { return t.Adjust == nil || *t.Adjust }

// maxNTPServers bounds time.ntp: each poll asks every server.
const maxNTPServers = 8

func (c *Config) timeDefaults() {
	t := &c.Time
	if len(t.NTP) == 0 {
		return
	}
	orDur(&t.Poll, 64*time.Second)
	orDur(&t.StepThreshold, time.Second)
	orDur(&t.Panic, 1000*time.Second)
}

func (c *Config) validateTime(add func(string, string, ...any)) {
	t := c.Time
	if len(t.NTP) == 0 {
		return
	}
	if len(t.NTP) > maxNTPServers {
		add("time.ntp", "%d servers: at most %d", len(t.NTP), maxNTPServers)
	}
	seen := map[string]bool{}
	for i, s := range t.NTP {
		p := fmt.Sprintf("time.ntp[%d]", i)
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				add(p, "%q: want an IP address, optionally with :port, e.g. 192.0.2.1 (names are not resolved)", s)
				continue
			}
			ap = netip.AddrPortFrom(a, 123)
		}
		if ap.Port() == 0 {
			add(p, "%q: port 0 is not allowed", s)
		} else if ap.Addr().IsUnspecified() || ap.Addr().IsMulticast() {
			add(p, "%q: want a server's address", s)
		} else if seen[ap.String()] {
			add(p, "%q is listed twice", s)
		}
		seen[ap.String()] = true
	}
	if d := t.Poll.D(); d < time.Second || d > 36*time.Hour {
		add("time.poll", "%v is outside 1s..36h", d)
	}
	if t.StepThreshold <= 0 {
		add("time.step_threshold", "must be more than zero")
	}
	if t.Panic < t.StepThreshold {
		add("time.panic", "%v is below time.step_threshold (%v)", t.Panic, t.StepThreshold)
	}
}
