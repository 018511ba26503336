package web

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// SetNames replaces the names the box is reached by (a reload).
func (s *Server) SetNames(names []string) {
	cp := make([]string, len(names))
	for i, n := range names {
		cp[i] = strings.ToLower(strings.TrimSuffix(n, "."))
	}
	s.names.Store(&cp)
}

// SetCertificate replaces the TLS certificate (a reload); it takes
// effect at the next handshake. A server started without one stays
// plain HTTP.
func (s *Server) SetCertificate(c *tls.Certificate) {
	if c != nil && s.cert.Load() != nil {
		s.cert.Store(c)
	}
}

// Certificate is the certificate served (nil: plain HTTP).
func (s *Server) Certificate() *tls.Certificate { return s.cert.Load() }

// Warning is one unsafe setting the box runs with (an alarm).
type Warning struct {
	Setting string `json:"setting"`
	Message string `json:"message"`
}

// SetWarnings replaces the alarms (a reload).
func (s *Server) SetWarnings(ws []Warning) {
	cp := append([]Warning{}, ws...)
	s.warnings.Store(&cp)
	s.unsafe.Reset()
	for _, w := range cp {
		s.unsafe.With(prometheus.Labels{"setting": w.Setting}).Set(1)
	}
}

// Warnings are the alarms the page shows.
func (s *Server) Warnings() []Warning { return *s.warnings.Load() }

// knownHost checks the Host header against what the box is reached by:
// loopback (an address or localhost), the address the request came in
// on, the listen address and web.names. A page from a rebound DNS name
// reaches the box with that name as Host and is refused.
func (s *Server) knownHost(r *http.Request) bool {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "" {
		return false
	}
	if host == "localhost" {
		return true
	}
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		if a.IsLoopback() {
			return true
		}
		if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			if ap, err := netip.ParseAddrPort(la.String()); err == nil && ap.Addr().Unmap() == a {
				return true
			}
		}
		if ap, err := netip.ParseAddrPort(s.opts.Listen); err == nil && ap.Addr().Unmap() == a {
			return true
		}
	}
	for _, n := range *s.names.Load() {
		if n == host {
			return true
		}
		if a, err := netip.ParseAddr(n); err == nil && a.String() == host {
			return true
		}
	}
	return false
}
