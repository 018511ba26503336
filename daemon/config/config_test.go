package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.err from the current messages")

// TestBadFiles loads every testdata/bad-*.yaml and compares the whole
// message with testdata/bad-*.err: every problem, with file:line and field.
func TestBadFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad-*.yaml")
	if len(files) < 5 {
		t.Fatalf("found %d bad fixtures, want at least 5", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(f)
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("Load(%s) = %v, want Problems", f, err)
			}
			golden := strings.TrimSuffix(f, ".yaml") + ".err"
			got := err.Error() + "\n"
			if *update {
				os.WriteFile(golden, []byte(got), 0o644)
			}
			want, rerr := os.ReadFile(golden)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if got != string(want) {
				t.Errorf("messages differ\n got:\n%s\nwant:\n%s", got, want)
			}
			for _, p := range ps {
				if !strings.HasPrefix(p.String(), f+":") {
					t.Errorf("problem %q does not start with the file name", p)
				}
			}
		})
	}
}

func TestGoodFiles(t *testing.T) {
	tests := []struct {
		file  string
		check func(t *testing.T, c *Config)
	}{
		{"testdata/good-single.yaml", func(t *testing.T, c *Config) {
			if c.SIP.Cores[0].Weight != 1 || c.SIP.Cores[1].Weight != 2 || c.SIP.Cores[1].MaxCalls != 1500 {
				t.Errorf("cores = %+v", c.SIP.Cores)
			}
			if len(c.Network.DNS) != 0 || len(c.Network.DNSServers()) != 0 {
				t.Errorf("network.dns left out = %q, want none (resolv.conf)", c.Network.DNS)
			}
			if c.SIP.Probe.Interval.D() != 5*time.Second || c.SIP.Retry.MaxTries != 3 {
				t.Errorf("probe/retry defaults not applied: %+v %+v", c.SIP.Probe, c.SIP.Retry)
			}
			if c.SocketPath() != "/tmp/x/sipedge.sock" {
				t.Errorf("socket = %s", c.SocketPath())
			}
		}},
		{"testdata/good-ha-pair.yaml", func(t *testing.T, c *Config) {
			v := c.VIPs[0]
			if v.Deadtime.D() != 10*time.Second || !v.Failback.On() || v.GARP.Count != 5 || len(v.Track) != 2 {
				t.Errorf("vip = %+v", v)
			}
			if c.Network.Bonds[0].MIIMon.D() != 100*time.Millisecond || c.Network.Management.Gateway.String() != "192.0.2.1" {
				t.Errorf("network = %+v", c.Network)
			}
		}},
		{"testdata/good-dns.yaml", func(t *testing.T, c *Config) {
			if got := fmt.Sprint(c.Network.DNSServers()); got != "[192.0.2.53:53 198.51.100.53:5353 [2001:db8::53]:53]" {
				t.Errorf("network.dns servers = %s (from %q)", got, c.Network.DNS)
			}
			b, err := Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			c2, err := Parse("shown", b)
			if err != nil {
				t.Fatalf("effective config does not load back: %v\n%s", err, b)
			}
			if fmt.Sprint(c2.Network.DNSServers()) != fmt.Sprint(c.Network.DNSServers()) {
				t.Errorf("round trip: %q", c2.Network.DNS)
			}
		}},
		{"testdata/good-db-four-box.yaml", func(t *testing.T, c *Config) {
			if c.SIP != nil {
				t.Error("a DB box has no sip section")
			}
			if c.VIPs[0].Deadtime.D() != DefaultDeadtime || c.VIPs[0].Priority != 150 || c.VIPs[0].Initdead.D() != 30*time.Second {
				t.Errorf("vip defaults: %+v", c.VIPs[0])
			}
			if c.Cluster.KeyFile != "/data/cluster.key" {
				t.Errorf("key file = %s", c.Cluster.KeyFile)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			c, err := Load(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestDefault(t *testing.T) {
	c := Default()
	if c.Node.Profile != "single" || c.Node.DataDir != "./var" {
		t.Errorf("node = %+v", c.Node)
	}
	if c.SIP == nil || c.SIP.Listen[0] != "udp:127.0.0.1:5060" || c.Web.Listen != "127.0.0.1:8080" {
		t.Errorf("default listeners: sip %+v web %q", c.SIP, c.Web.Listen)
	}
	// The effective config printed by `ctl config show` reads back the same.
	b, err := Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Parse("shown", b)
	if err != nil {
		t.Fatalf("effective config does not load back: %v\n%s", err, b)
	}
	if c2.SIP.DialogTTL != c.SIP.DialogTTL || c2.Security.Flood != c.Security.Flood {
		t.Errorf("round trip changed values")
	}
}

func TestEmptyFileIsSingleProfileNeedingSIP(t *testing.T) {
	_, err := Parse("empty.yaml", nil)
	if err == nil || !strings.Contains(err.Error(), "profile single needs a sip: section") {
		t.Fatalf("err = %v", err)
	}
}

func TestSecuritySource(t *testing.T) {
	tests := []struct {
		in, want, tp string
		bad          bool
	}{
		{in: "198.51.100.0/24", want: "198.51.100.0/24"},
		{in: "198.51.100.9/24", want: "198.51.100.0/24"},
		{in: "192.0.2.7", want: "192.0.2.7/32"},
		{in: "tcp:203.0.113.0/24", want: "tcp:203.0.113.0/24", tp: "tcp"},
		{in: "UDP:2001:db8::/32", want: "udp:2001:db8::/32", tp: "udp"},
		{in: "2001:db8::1", want: "2001:db8::1/128"},
		{in: "sctp:192.0.2.0/24", bad: true},
		{in: "192.0.2.300", bad: true},
		{in: "", bad: true},
	}
	for _, tt := range tests {
		var s Source
		err := s.UnmarshalText([]byte(tt.in))
		if tt.bad {
			if err == nil {
				t.Errorf("%q: accepted as %v", tt.in, s)
			}
			continue
		}
		if err != nil || s.String() != tt.want || s.Transport != tt.tp {
			t.Errorf("%q: got %v (transport %q), %v; want %s", tt.in, s, s.Transport, err, tt.want)
		}
	}
}

func TestSecurityDefaults(t *testing.T) {
	c := Default()
	if got := fmt.Sprint(c.Security.Trusted); got != "[127.0.0.0/8 ::1/128]" {
		t.Errorf("default trusted = %s", got)
	}
	if c.Security.Flood.Sources != 65536 || c.Security.Flood.Requests != 16 {
		t.Errorf("flood = %+v", c.Security.Flood)
	}
	c2, err := Load("testdata/good-ha-pair.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(c2.Security.Trusted); got != "[198.51.100.0/24 tcp:203.0.113.0/24 192.0.2.7/32]" {
		t.Errorf("trusted = %s (an explicit list replaces the loopback default)", got)
	}
	b, err := Marshal(c2)
	if err != nil {
		t.Fatal(err)
	}
	c3, err := Parse("shown", b)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(c3.Security.Trusted) != fmt.Sprint(c2.Security.Trusted) {
		t.Errorf("round trip: %v", c3.Security.Trusted)
	}
}

// TestFloodOff: `flood.requests: 0` turns flood detection off (it is not
// taken for "unset"), and survives `ctl config show`'s round trip; left
// out, it is 16.
func TestFloodOff(t *testing.T) {
	for _, tt := range []struct {
		flood string
		want  int
	}{
		{"{requests: 0}", 0},
		{"{requests: 40, per: 1s}", 40},
		{"{per: 1s}", 16},
	} {
		src := "sip: {listen: [\"udp:127.0.0.1:5060\"]}\nsecurity: {flood: " + tt.flood + "}\n"
		c, err := Parse("flood.yaml", []byte(src))
		if err != nil {
			t.Fatalf("%s: %v", tt.flood, err)
		}
		if c.Security.Flood.Requests != tt.want {
			t.Errorf("flood %s: requests = %d, want %d", tt.flood, c.Security.Flood.Requests, tt.want)
		}
		b, err := Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if c2, err := Parse("shown", b); err != nil || c2.Security.Flood.Requests != tt.want {
			t.Errorf("flood %s: round trip gives %+v (%v)", tt.flood, c2, err)
		}
	}
}

// TestSIPTCP: sip.tcp takes Kamailio's defaults (120 s idle, 2048
// connections) when left out, keeps given values through `ctl config
// show`'s round trip, and refuses impossible ones with their line.
func TestSIPTCP(t *testing.T) {
	c := Default()
	if got, want := c.SIP.TCP, (TCP{IdleTimeout: Duration(time.Hour), MessageTimeout: Duration(10 * time.Second), MaxConnections: 2048, MaxPerSource: 64}); got != want {
		t.Errorf("defaults = %+v, want %+v", got, want)
	}
	src := "sip:\n  listen: [\"tcp:127.0.0.1:5060\"]\n  tcp: {idle_timeout: 1m, message_timeout: 5s, max_connections: 500, max_per_source: 8}\n"
	c, err := Parse("tcp.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := TCP{IdleTimeout: Duration(time.Minute), MessageTimeout: Duration(5 * time.Second), MaxConnections: 500, MaxPerSource: 8}
	if c.SIP.TCP != want {
		t.Errorf("parsed %+v, want %+v", c.SIP.TCP, want)
	}
	b, err := Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if c2, err := Parse("shown", b); err != nil || c2.SIP.TCP != want {
		t.Errorf("round trip: %+v, %v", c2, err)
	}
	for _, tt := range []struct{ tcp, want string }{
		{"{idle_timeout: -1s}", "tcp.yaml:3: sip.tcp.idle_timeout: must be more than zero"},
		{"{message_timeout: -1s}", "tcp.yaml:3: sip.tcp.message_timeout: must be more than zero"},
		{"{idle_timeout: 5s, message_timeout: 6s}", "tcp.yaml:3: sip.tcp.message_timeout: 6s is longer than sip.tcp.idle_timeout 5s"},
		{"{max_connections: -5}", "tcp.yaml:3: sip.tcp.max_connections: -5 is outside 1..16384"},
		{"{max_connections: 16, max_per_source: 17}", "tcp.yaml:3: sip.tcp.max_per_source: 17 is more than sip.tcp.max_connections (16)"},
		{"{max_connections: 16, idle_timeout: 5s}", ""}, // left out: max_per_source 16, message_timeout 5s
		{"{max_per_source: -1}", "tcp.yaml:3: sip.tcp.max_per_source: must be at least 1"},
	} {
		c, err := Parse("tcp.yaml", []byte("sip:\n  listen: [\"tcp:127.0.0.1:5060\"]\n  tcp: "+tt.tcp+"\n"))
		if tt.want == "" {
			if err != nil || c.SIP.TCP.MaxPerSource != 16 || c.SIP.TCP.MessageTimeout.D() != 5*time.Second {
				t.Errorf("tcp %s: %v, %+v", tt.tcp, err, c.SIP.TCP)
			}
			continue
		}
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("tcp %s: err = %v, want one problem starting %q", tt.tcp, err, tt.want)
		}
	}
}
