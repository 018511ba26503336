package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// Web is the status page, JSON API and /metrics.
type Web struct {
	Listen string `yaml:"listen"` // empty: disabled
	// OpenTo are the networks that may reach the server and read it
	// (empty: loopback only).
	OpenTo []netip.Prefix `yaml:"open_to"`
	// AdminFrom are the administration networks: they may log in and
	// act, and the global login lock never holds them. Default: loopback
	// only (loopback always is one).
	AdminFrom []netip.Prefix `yaml:"admin_from"`
	// Names are the host names (and extra addresses) the box is reached
	// by: a request whose Host header is none of these, the address it
	// came in on, or loopback is refused (DNS rebinding). They also go
	// into the self-signed certificate.
	Names []string `yaml:"names"`
	// TLS, when present (`tls: {}` at least), serves HTTPS: with the
	// operator's certificate and key, or a self-signed one kept in the
	// store when none is given.
	TLS *WebTLS `yaml:"tls"`
	// PlainHTTP allows plain HTTP off loopback knowingly.
	PlainHTTP bool `yaml:"plain_http"`

	// AdminFromSet tells that the file gave admin_from (not in YAML): a
	// file written before it existed lets every open_to network act.
	AdminFromSet bool `yaml:"-"`
}

// WebTLS is the operator's certificate (PEM files, chain first).
type WebTLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Loopback are the loopback networks (the default of web.admin_from).
var Loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// maxWebNames bounds web.names.
const maxWebNames = 32

// HTTPS reports whether the web server speaks TLS.
func (w Web) HTTPS() bool { return w.TLS != nil }

// OperatorCert reports whether TLS uses the operator's certificate
// (rather than the self-signed one): only then is HSTS sent.
func (w Web) OperatorCert() bool { return w.TLS != nil && w.TLS.Cert != "" }

// OnLoopback reports whether web.listen is a loopback address.
func (w Web) OnLoopback() bool {
	ap, err := netip.ParseAddrPort(w.Listen)
	return err == nil && ap.Addr().IsLoopback()
}

// OpenToActs reports whether every web.open_to network may log in and
// act: a file written before web.admin_from existed, whose open_to
// reaches off the box.
func (w Web) OpenToActs() bool {
	return !w.AdminFromSet && offBox(w.OpenTo)
}

// offBox reports whether any of ps reaches beyond loopback.
func offBox(ps []netip.Prefix) bool {
	for _, p := range ps {
		if !p.Addr().IsLoopback() {
			return true
		}
	}
	return false
}

func (w *Web) applyDefaults(set map[string]int) {
	_, w.AdminFromSet = set["web.admin_from"]
	if w.AdminFrom == nil {
		w.AdminFrom = append([]netip.Prefix(nil), Loopback...)
	}
}

func (w *Web) validate(add func(path, format string, args ...any)) {
	if w.Listen != "" {
		checkHostPort(add, "web.listen", w.Listen)
	}
	if t := w.TLS; t != nil {
		if (t.Cert == "") != (t.Key == "") {
			add("web.tls", "give both cert and key (PEM files), or neither for a self-signed certificate kept in the store")
		}
		if w.PlainHTTP {
			add("web.plain_http", "web.tls is set: the server speaks HTTPS only; remove plain_http")
		}
	}
	if len(w.Names) > maxWebNames {
		add("web.names", "%d names: at most %d", len(w.Names), maxWebNames)
	}
	for i, n := range w.Names {
		if err := checkWebName(n); err != nil {
			add(fmt.Sprintf("web.names[%d]", i), "%q: %v", n, err)
		}
	}
}

// checkWebName accepts a DNS name or an IP address, without port or
// scheme.
func checkWebName(n string) error {
	if _, err := netip.ParseAddr(n); err == nil {
		return nil
	}
	if n == "" || len(n) > 253 {
		return fmt.Errorf("want a host name of 1 to 253 characters or an IP address")
	}
	for _, label := range strings.Split(n, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("want a host name such as edge-a.example.net (no port, no scheme) or an IP address")
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("want a host name such as edge-a.example.net (no port, no scheme) or an IP address")
			}
		}
	}
	return nil
}

// warnings are what a file written before the web hardening may still
// say: the daemon runs with it and raises an alarm; `config validate`
// fails on it.
func (w Web) warnings(add func(path, format string, args ...any)) {
	if w.Listen == "" {
		return
	}
	if !w.HTTPS() && !w.PlainHTTP && !w.OnLoopback() && (offBox(w.OpenTo) || offBox(w.AdminFrom)) {
		add("web.listen", "plain HTTP on %s: the web password and session cookie cross the network in clear; add `tls: {}` (a self-signed certificate kept in the store) or `tls: {cert: FILE, key: FILE}`, or `plain_http: true` to accept it", w.Listen)
	}
	if w.OpenToActs() {
		add("web.admin_from", "not set: every web.open_to network may log in and act, as before; list the administration networks in web.admin_from (the others then only read)")
	}
}
