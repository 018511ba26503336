package config

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestGoodTLS(t *testing.T) {
	c, err := Load("testdata/good-tls.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tl := c.SIP.TLS
	if len(tl.Certificates) != 2 || tl.Certificates[1] != (CertKey{"/data/tls/edge-b.pem", "/data/tls/edge-b.key"}) {
		t.Errorf("certificates = %+v", tl.Certificates)
	}
	if tl.ClientCA != "/data/tls/carriers-ca.pem" || tl.VerifyClients != "optional" || tl.CoreCA != "/data/tls/cores-ca.pem" {
		t.Errorf("tls = %+v", tl)
	}
	if tl.HandshakeTimeout.D() != DefaultTLSHandshakeTimeout {
		t.Errorf("handshake_timeout = %v, want the default %v", tl.HandshakeTimeout, DefaultTLSHandshakeTimeout)
	}
	if tl.CoreCertificate == nil || tl.CoreCertificate.Key != "/data/tls/balancer.key" {
		t.Errorf("core_certificate = %+v", tl.CoreCertificate)
	}
	if !c.SIP.HasTLSListener() {
		t.Error("HasTLSListener = false")
	}
	for i, want := range []string{"udp 198.51.100.21:5060", "tcp 198.51.100.22:5060", "tls 198.51.100.23:5061"} {
		tp, ap, err := c.SIP.Cores[i].Endpoint()
		if got := fmt.Sprint(tp, " ", ap); err != nil || got != want {
			t.Errorf("cores[%d].Endpoint() = %s, %v; want %s", i, got, err, want)
		}
	}
	if c.SIP.Cores[2].TLSName != "core3.example.net" {
		t.Errorf("tls_name = %q", c.SIP.Cores[2].TLSName)
	}
	if got := fmt.Sprint(c.Security.TrustedNetworks()); got != "[198.51.100.0/24]" {
		t.Errorf("TrustedNetworks = %s", got)
	}
	if got := c.Security.TrustedTLSNames(); !slices.Equal(got, []string{"sbc.carrier.example", "*.trunks.example"}) {
		t.Errorf("TrustedTLSNames = %q", got)
	}
	// `ctl config show` reads back the same.
	b, err := Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Parse("shown", b)
	if err != nil {
		t.Fatalf("effective config does not load back: %v\n%s", err, b)
	}
	if !reflect.DeepEqual(c2.SIP.TLS, c.SIP.TLS) || fmt.Sprint(c2.Security.Trusted) != fmt.Sprint(c.Security.Trusted) ||
		c2.SIP.Cores[2] != c.SIP.Cores[2] {
		t.Errorf("round trip changed sip.tls, cores or trusted:\n%s", b)
	}
}

// TestTLSDefaultsLeaveOldFilesAlone: a file without TLS loads as before,
// with verification off and no TLS identities.
func TestTLSDefaultsLeaveOldFilesAlone(t *testing.T) {
	for _, f := range []string{"testdata/good-single.yaml", "testdata/good-ha-pair.yaml"} {
		c, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		if tl := c.SIP.TLS; tl.VerifyClients != "none" || tl.HandshakeTimeout.D() != 5*time.Second || len(tl.Certificates) != 0 {
			t.Errorf("%s: tls = %+v", f, tl)
		}
		if c.SIP.HasTLSListener() || c.Security.TrustedTLSNames() != nil || len(c.Security.TrustedNetworks()) != len(c.Security.Trusted) {
			t.Errorf("%s: TLS where there is none: %+v", f, c.Security.Trusted)
		}
	}
	if c := Default(); c.SIP.TLS.VerifyClients != "none" || c.Security.TrustedTLSNames() != nil {
		t.Errorf("default: %+v", c.SIP.TLS)
	}
}

func TestSplitTransport(t *testing.T) {
	for _, tt := range []struct {
		in, tp, rest string
		ok           bool
	}{
		{"tls:192.0.2.10:5061", "tls", "192.0.2.10:5061", true},
		{"tcp:192.0.2.10:5060", "tcp", "192.0.2.10:5060", true},
		{"TCP:192.0.2.10:5060", "TCP", "192.0.2.10:5060", false},
		{"udp:[2001:db8::1]:5060", "udp", "[2001:db8::1]:5060", true},
		{"192.0.2.10:5060", "", "192.0.2.10:5060", true},
		{"[2001:db8::1]:5060", "", "[2001:db8::1]:5060", true},
		{"2001:db8::1", "", "2001:db8::1", true},
		{"core4.example:5060", "", "core4.example:5060", true},
		{"sctp:192.0.2.10:5060", "sctp", "192.0.2.10:5060", false},
	} {
		tp, rest, ok := SplitTransport(tt.in)
		if tp != tt.tp || rest != tt.rest || ok != tt.ok {
			t.Errorf("SplitTransport(%q) = %q, %q, %v; want %q, %q, %v", tt.in, tp, rest, ok, tt.tp, tt.rest, tt.ok)
		}
	}
}

func TestTrustedTLSNames(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		bad      bool
	}{
		{in: "tls-name:sbc.carrier.example", want: "tls-name:sbc.carrier.example"},
		{in: "TLS-NAME:SBC.Carrier.Example", want: "tls-name:sbc.carrier.example"},
		{in: "tls-name:*.carrier.example", want: "tls-name:*.carrier.example"},
		{in: "tls-name:localhost", want: "tls-name:localhost"},
		{in: "tls-name:", bad: true},
		{in: "tls-name:*.example", bad: true},
		{in: "tls-name:a.*.example.com", bad: true},
		{in: "tls-name:*a.example.com", bad: true},
		{in: "tls-name:-a.example.com", bad: true},
		{in: "tls-name:192.0.2.7", bad: true},
		{in: "tls-name:a..example.com", bad: true},
	} {
		var s Source
		err := s.UnmarshalText([]byte(tt.in))
		if tt.bad {
			if err == nil {
				t.Errorf("%q: accepted as %v", tt.in, s)
			}
			continue
		}
		if err != nil || s.String() != tt.want || !s.IsTLSName() || s.Prefix.IsValid() || s.Transport != "" {
			t.Errorf("%q: got %+v, %v; want %s", tt.in, s, err, tt.want)
		}
	}

	sec := Security{}
	for _, v := range []string{"198.51.100.0/24", "tls-name:sbc.carrier.example", "tls-name:*.trunks.example"} {
		var s Source
		if err := s.UnmarshalText([]byte(v)); err != nil {
			t.Fatal(err)
		}
		sec.Trusted = append(sec.Trusted, s)
	}
	for _, tt := range []struct {
		names []string
		want  bool
	}{
		{[]string{"sbc.carrier.example"}, true},
		{[]string{"other.example", "SBC.Carrier.Example"}, true},
		{[]string{"a.trunks.example"}, true},
		{[]string{"a.b.trunks.example"}, false},
		{[]string{"trunks.example"}, false},
		{[]string{"*.trunks.example"}, false},
		{[]string{"198.51.100.1"}, false},
		{nil, false},
	} {
		if got := sec.TrustsTLSIdentity(tt.names); got != tt.want {
			t.Errorf("TrustsTLSIdentity(%q) = %v, want %v", tt.names, got, tt.want)
		}
	}
}
