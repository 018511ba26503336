package config

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// SIPTLS is SIP over TLS: the certificates that tls: listeners present
// to callers, how callers' certificates are verified, and what the
// balancer trusts and presents toward tls: Cores. The files are PEM and
// are read again on SIGHUP (daemon/tlsconf).
type SIPTLS struct {
	// Certificates are presented to callers, chosen by the name the
	// caller asks for (SNI); the first is the default.
	Certificates []CertKey `yaml:"certificates"`
	// ClientCA is the CAs that callers' certificates must chain to.
	ClientCA string `yaml:"client_ca"`
	// VerifyClients: none (default: no certificate asked for),
	// optional (verified when given), require (no verified
	// certificate, no connection). optional and require need client_ca.
	VerifyClients string `yaml:"verify_clients"`
	// HandshakeTimeout bounds a caller's TLS handshake (default 5s).
	HandshakeTimeout Duration `yaml:"handshake_timeout"`
	// CoreCA is the CAs that the certificates of tls: Cores must chain
	// to (one for every Core: a platform's Cores share a PKI); empty:
	// the system's roots. Each tls: Core names the name to verify in
	// its tls_name.
	CoreCA string `yaml:"core_ca"`
	// CoreCertificate, when set, is presented to tls: Cores (mutual TLS).
	CoreCertificate *CertKey `yaml:"core_certificate"`
}

// CertKey is a certificate (leaf first, then intermediates) and its key.
type CertKey struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// DefaultTLSHandshakeTimeout is sip.tls.handshake_timeout.
const DefaultTLSHandshakeTimeout = 5 * time.Second

// Transports of listen and Core addresses.
const (
	TransportUDP = "udp"
	TransportTCP = "tcp"
	TransportTLS = "tls"
)

// SplitTransport cuts the transport prefix off a listen or Core address:
// "tls:192.0.2.10:5061" is ("tls", "192.0.2.10:5061", true); an address
// without one is ("", s, true); an unknown prefix ("sctp:...") is
// ("sctp", rest, false). Prefixes are lower case: the daemon's other
// readers of sip.listen look for "udp:" as written.
func SplitTransport(s string) (transport, rest string, ok bool) {
	t, r, found := strings.Cut(s, ":")
	if !found || strings.HasPrefix(s, "[") || !strings.Contains(r, ":") || strings.ContainsAny(t, ".") {
		return "", s, true
	}
	switch t {
	case TransportUDP, TransportTCP, TransportTLS:
		return t, r, true
	default:
		if _, err := netip.ParseAddr(s); err == nil { // a bare IPv6 address
			return "", s, true
		}
		return t, r, false
	}
}

// Endpoint is the Core's transport (udp when the address has no prefix)
// and IP:port.
func (c Core) Endpoint() (transport string, ap netip.AddrPort, err error) {
	tp, rest, ok := SplitTransport(c.Address)
	if !ok {
		return "", netip.AddrPort{}, fmt.Errorf("core %q: unknown transport %q", c.Name, tp)
	}
	if tp == "" {
		tp = TransportUDP
	}
	ap, err = netip.ParseAddrPort(rest)
	if err != nil {
		return "", netip.AddrPort{}, fmt.Errorf("core %q: %w", c.Name, err)
	}
	return tp, ap, nil
}

// HasTLSListener reports whether a listen address is tls:.
func (s *SIP) HasTLSListener() bool {
	for _, l := range s.Listen {
		if tp, _, _ := SplitTransport(l); tp == TransportTLS {
			return true
		}
	}
	return false
}

func (s *SIP) tlsDefaults(set map[string]int) {
	orStr(&s.TLS.VerifyClients, "none")
	orDurUnlessGiven(set, "sip.tls.handshake_timeout", &s.TLS.HandshakeTimeout, DefaultTLSHandshakeTimeout) // 0 given: refused
}

// validateTLS checks sip.tls and what depends on it.
func (s *SIP) validateTLS(add func(string, string, ...any), oneOf func(string, string, ...string)) {
	t := s.TLS
	for i, ck := range t.Certificates {
		p := fmt.Sprintf("sip.tls.certificates[%d]", i)
		if ck.Cert == "" {
			add(p+".cert", "must be set (the certificate's PEM file)")
		}
		if ck.Key == "" {
			add(p+".key", "must be set (the private key's PEM file)")
		}
	}
	oneOf("sip.tls.verify_clients", t.VerifyClients, "none", "optional", "require")
	if (t.VerifyClients == "optional" || t.VerifyClients == "require") && t.ClientCA == "" {
		add("sip.tls.verify_clients", "%s needs sip.tls.client_ca, the CA file that callers' certificates must chain to", t.VerifyClients)
	}
	if d := t.HandshakeTimeout.D(); d <= 0 || d > time.Minute {
		add("sip.tls.handshake_timeout", "%v is outside (0, 1m]", d)
	}
	if ck := t.CoreCertificate; ck != nil && (ck.Cert == "") != (ck.Key == "") {
		add("sip.tls.core_certificate", "set both cert and key, or neither")
	}
	for i, l := range s.Listen {
		if tp, _, _ := SplitTransport(l); tp == TransportTLS && len(t.Certificates) == 0 {
			add(fmt.Sprintf("sip.listen[%d]", i), "%q: a tls: listener needs sip.tls.certificates", l)
			break
		}
	}
}

// validateCoreTLS checks a Core's tls_name against its transport.
func validateCoreTLS(add func(string, string, ...any), p string, co Core, transport string, byName bool) {
	switch {
	case transport != TransportTLS && co.TLSName != "":
		add(p+".tls_name", "only a tls: address has a certificate to verify")
	case transport == TransportTLS && co.TLSName == "" && byName:
		// The certificate must carry the name looked up (RFC 5922 4.1).
	case transport == TransportTLS && co.TLSName == "":
		add(p+".tls_name", "a tls: Core needs the name its certificate carries: its address is an IP, which names no one")
	case transport == TransportTLS:
		if err := checkDNSName(co.TLSName, false); err != nil {
			add(p+".tls_name", "%q: %v", co.TLSName, err)
		}
	}
}

// checkDNSName reports what is wrong with a DNS name (lower or upper
// case, no trailing dot); wildcard allows "*." as the whole leftmost
// label, before at least two labels.
func checkDNSName(name string, wildcard bool) error {
	rest := name
	if strings.HasPrefix(name, "*.") {
		if !wildcard {
			return fmt.Errorf("want a DNS name, not a wildcard")
		}
		rest = name[2:]
		if !strings.Contains(rest, ".") {
			return fmt.Errorf("a wildcard needs two labels or more after the star (*.example.com)")
		}
	}
	if rest == "" || len(name) > 253 {
		return fmt.Errorf("want a DNS name of 1..253 characters")
	}
	for _, label := range strings.Split(rest, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("labels are 1..63 characters")
		}
		if strings.Contains(label, "*") {
			return fmt.Errorf("a wildcard is the whole leftmost label only (*.example.com)")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("a label does not begin or end with '-'")
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("%q is not a letter, digit or '-'", r)
			}
		}
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return fmt.Errorf("want a DNS name, not an address")
	}
	return nil
}

// validateTrustedTLS refuses tls-name: entries that can never match: no
// tls: listener, or callers' certificates not verified.
func (c *Config) validateTrustedTLS(add func(string, string, ...any)) {
	for i, t := range c.Security.Trusted {
		if !t.IsTLSName() {
			continue
		}
		p := fmt.Sprintf("security.trusted[%d]", i)
		switch s := c.SIP; {
		case s == nil || !s.HasTLSListener():
			add(p, "%s: no sip.listen address is tls:, so no caller has a certificate to match", t)
		case s.TLS.VerifyClients == "none":
			add(p, "%s: sip.tls.verify_clients is none, so no caller's certificate is verified to match", t)
		}
	}
}
