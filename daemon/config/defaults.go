package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"time"
)

// Defaults for fields the file leaves out.
const (
	DefaultDeadtime       = 10 * time.Second // the platform's promise
	DefaultInterval       = 1 * time.Second
	DefaultUDPBufferBytes = 8 << 20
	// DefaultShedDelay is sip.overload.queue_delay.
	DefaultShedDelay = 100 * time.Millisecond
)

// DefaultScanners are user agents of known SIP scanners.
var DefaultScanners = []string{"friendly-scanner", "sipvicious", "sipcli", "sip-scan", "sundayddr", "iWar", "VaxSIPUserAgent", "pplsip"}

func orDur(d *Duration, v time.Duration) {
	if *d == 0 {
		*d = Duration(v)
	}
}

// orDurUnlessGiven defaults a duration where a 0 written in the file
// means zero ("no wait"), not the default.
func orDurUnlessGiven(set map[string]int, path string, d *Duration, v time.Duration) {
	if _, given := set[path]; !given {
		orDur(d, v)
	}
}

func orInt(i *int, v int) {
	if *i == 0 {
		*i = v
	}
}

func orStr(s *string, v string) {
	if *s == "" {
		*s = v
	}
}

// applyDefaults fills what the file left out; set holds the paths the
// file gave (a field whose zero value means something, such as
// security.flood.requests: 0, keeps it when given).
func (c *Config) applyDefaults(set map[string]int) {
	orStr(&c.Node.Name, "sipedge")
	orStr(&c.Node.Profile, "single")
	orStr(&c.Node.Platform, "generic-x86_64")
	orStr(&c.Node.DataDir, "/data")
	orStr(&c.Log.Level, "info")
	orStr(&c.Log.Format, "auto")
	c.Web.applyDefaults(set)
	if c.Watchdog.Device != "" {
		orDur(&c.Watchdog.Timeout, 10*time.Second)
	}
	for i := range c.Network.Bonds {
		b := &c.Network.Bonds[i]
		orStr(&b.Mode, "active-backup")
		orDur(&b.MIIMon, 100*time.Millisecond)
	}
	if s := c.SIP; s != nil {
		orStr(&s.Algorithm, "least-load")
		orDur(&s.Probe.Interval, 5*time.Second)
		orDur(&s.Probe.Timeout, 1*time.Second)
		orInt(&s.Probe.DownAfter, 3)
		orInt(&s.Probe.UpAfter, 2)
		if len(s.Probe.Codes) == 0 {
			s.Probe.Codes = []int{200}
		}
		if len(s.Retry.On) == 0 {
			s.Retry.On = []int{408, 500, 503}
		}
		orDur(&s.Retry.AttemptTimeout, 2*time.Second)
		orInt(&s.Retry.MaxTries, 3)
		orDur(&s.DialogTTL, 12*time.Hour)
		orInt(&s.UDPBufferBytes, DefaultUDPBufferBytes)
		orDur(&s.Overload.QueueDelay, DefaultShedDelay)
		orInt(&s.Overload.QueueLength, 4096)
		orInt(&s.Overload.RetryAfter, 5)
		orDur(&s.TCP.IdleTimeout, time.Hour)
		// Left out, message_timeout and max_per_source never exceed
		// the idle timeout and max_connections given.
		msg := 10 * time.Second
		if d := s.TCP.IdleTimeout.D(); d > 0 && d < msg {
			msg = d
		}
		orDur(&s.TCP.MessageTimeout, msg)
		orInt(&s.TCP.MaxConnections, 2048)
		orInt(&s.TCP.MaxPerSource, min(64, max(s.TCP.MaxConnections, 1)))
		orInt(&s.Caps.Dialogs, 150_000)
		orInt(&s.Caps.Transactions, 200_000)
		orInt(&s.Caps.Branches, 200_000)
		orDur(&s.Caps.SessionExpires, 2*time.Hour)
		for i := range s.Cores {
			orInt(&s.Cores[i].Weight, 1)
		}
		s.tlsDefaults(set)
	}
	if cl := c.Cluster; cl != nil {
		orDur(&cl.Interval, DefaultInterval)
		orDurUnlessGiven(set, "cluster.handover_relay", &cl.HandoverRelay, 3*time.Second) // 0: no relay
		orStr(&cl.KeyFile, filepath.Join(c.Node.DataDir, "cluster.key"))
		c.replicationDefaults(cl)
	}
	for i := range c.VIPs {
		v := &c.VIPs[i]
		switch v.Role {
		case "main":
			orInt(&v.Priority, 150)
		case "backup":
			orInt(&v.Priority, 100)
		}
		orDur(&v.Deadtime, DefaultDeadtime)
		orDur(&v.Initdead, 3*v.Deadtime.D())
		p := fmt.Sprintf("vips[%d]", i)
		orDurUnlessGiven(set, p+".failback.stable_for", &v.Failback.StableFor, 5*time.Second) // 0: hand back at once
		orInt(&v.GARP.Count, 5)
		if v.Follows != nil {
			orStr(&v.Follows.On, "peer")
		}
		orDurUnlessGiven(set, p+".garp.repeat_after", &v.GARP.RepeatAfter, 5*time.Second) // 0: no repeat
	}
	orStr(&c.Security.Untrusted, "allow")
	orStr(&c.Security.Relay, "dialogs")
	if _, given := set["security.flood.requests"]; !given {
		orInt(&c.Security.Flood.Requests, 16) // 0 given: flood detection off
	}
	orDur(&c.Security.Flood.Per, 2*time.Second)
	orDur(&c.Security.Flood.Ban, 5*time.Minute)
	orInt(&c.Security.Flood.Sources, 65536)
	if c.Security.Trusted == nil {
		c.Security.Trusted = []Source{{Prefix: netip.MustParsePrefix("127.0.0.0/8")}, {Prefix: netip.MustParsePrefix("::1/128")}}
	}
	if c.Security.Scanners == nil {
		c.Security.Scanners = DefaultScanners
	}
	orInt(&c.Security.Limits.MessageBytes, 16384)
	orInt(&c.Security.Limits.URIBytes, 512)
	orInt(&c.Security.Limits.Headers, 128)
	c.timeDefaults()
	c.consoleDefaults()
	c.updateDefaults()
}
