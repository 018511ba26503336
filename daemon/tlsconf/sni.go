package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/netip"
	"strings"
)

// certificate chooses the certificate for a handshake: the one whose
// SAN carries the SNI name exactly, else one with a wildcard covering
// it (*.example.com covers a.example.com, not a.b.example.com nor
// example.com); without SNI the one whose SAN carries the local address
// the client reached; else the first.
func (m *material) certificate(h *tls.ClientHelloInfo) *tls.Certificate {
	if name := normName(h.ServerName); name != "" {
		if i := m.byName(name); i >= 0 {
			return m.certs[i]
		}
		return m.certs[0]
	}
	if h.Conn != nil {
		if ap, err := netip.ParseAddrPort(h.Conn.LocalAddr().String()); err == nil {
			ip := ap.Addr().Unmap()
			for i, c := range m.certs {
				for _, a := range c.Leaf.IPAddresses {
					if x, ok := netip.AddrFromSlice(a); ok && x.Unmap() == ip {
						return m.certs[i]
					}
				}
			}
		}
	}
	return m.certs[0]
}

// byName is the index of the certificate for name, or -1.
func (m *material) byName(name string) int {
	for i, ns := range m.names {
		for _, n := range ns {
			if n == name {
				return i
			}
		}
	}
	for i, ns := range m.names {
		for _, n := range ns {
			if wildcardCovers(n, name) {
				return i
			}
		}
	}
	return -1
}

// wildcardCovers reports whether pattern "*.rest" covers name: one
// whole leftmost label in place of the star.
func wildcardCovers(pattern, name string) bool {
	rest, ok := strings.CutPrefix(pattern, "*.")
	if !ok {
		return false
	}
	label, parent, ok := strings.Cut(name, ".")
	return ok && label != "" && parent == rest
}

// dnsNames are the certificate's DNS SANs, lower case.
func dnsNames(c *x509.Certificate) []string {
	ns := make([]string, 0, len(c.DNSNames))
	for _, n := range c.DNSNames {
		if n = normName(n); n != "" {
			ns = append(ns, n)
		}
	}
	return ns
}

// normName lowers a host name and drops a trailing dot; an IP address
// (clients may send one though RFC 6066 forbids it) is no name.
func normName(s string) string {
	s = strings.TrimSuffix(strings.ToLower(s), ".")
	if net.ParseIP(s) != nil {
		return ""
	}
	return s
}
