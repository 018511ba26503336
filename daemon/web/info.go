package web

import (
	"net"
	"net/netip"
	"strconv"
	"time"
)

// MethodWeb is the control method that describes the web server (ctl
// `web`, the console banner): address, scheme, certificate and its
// fingerprint, alarms.
const MethodWeb = "web"

// Info is MethodWeb's answer.
type Info struct {
	// Listen is web.listen ("": the web server is off).
	Listen string `json:"listen"`
	// URL is where to point a browser ("" when off).
	URL string `json:"url,omitempty"`
	// Scheme is "https", "http" or "off".
	Scheme string `json:"scheme"`
	// TLSSource is "operator" (web.tls cert and key) or "self-signed"
	// (generated at first start, kept in the store).
	TLSSource string `json:"tls_source,omitempty"`
	// TLSFingerprint is the certificate's SHA-256, upper-case hex pairs
	// joined by colons (AB:CD:...), as browsers show it: pin it.
	TLSFingerprint string `json:"tls_fingerprint,omitempty"`
	// TLSSPKI is the base64 SHA-256 of the public key (a browser's
	// pin, e.g. Chromium's --ignore-certificate-errors-spki-list).
	TLSSPKI     string         `json:"tls_spki_sha256,omitempty"`
	TLSNotAfter time.Time      `json:"tls_not_after,omitzero"`
	TLSSubject  string         `json:"tls_subject,omitempty"`
	HSTS        bool           `json:"hsts"`
	Names       []string       `json:"names,omitempty"`
	OpenTo      []netip.Prefix `json:"open_to"`
	AdminFrom   []netip.Prefix `json:"admin_from"`
	OpenToActs  bool           `json:"open_to_may_act"`
	Warnings    []Warning      `json:"warnings,omitempty"`
}

// Info describes the server as it runs (listen as configured).
func (s *Server) Info() Info {
	in := Info{Listen: s.opts.Listen, Scheme: "http", Names: *s.names.Load(), OpenTo: *s.openTo.Load(),
		AdminFrom: s.access.Load().nets, OpenToActs: s.access.Load().allOpenTo, Warnings: s.Warnings()}
	if c := s.cert.Load(); c != nil {
		in.Scheme, in.HSTS = "https", s.opts.HSTS
		in.TLSFingerprint, in.TLSSPKI = Fingerprint(c), SPKIHash(c)
		if c.Leaf != nil {
			in.TLSNotAfter, in.TLSSubject = c.Leaf.NotAfter.UTC(), c.Leaf.Subject.String()
		}
	}
	host := s.opts.Listen
	if ap, err := netip.ParseAddrPort(host); err == nil && ap.Addr().IsUnspecified() && len(in.Names) > 0 {
		host = net.JoinHostPort(in.Names[0], strconv.Itoa(int(ap.Port())))
	}
	in.URL = in.Scheme + "://" + host + "/"
	return in
}
