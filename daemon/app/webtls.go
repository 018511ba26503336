package app

import (
	"crypto/tls"
	"fmt"
	"net/netip"
	"time"

	"github.com/sipedge/sipedge/daemon/config"
	"github.com/sipedge/sipedge/daemon/store"
	"github.com/sipedge/sipedge/daemon/web"
)

// keyWebCert is the self-signed web certificate in the State bucket (a
// factory reset of runtime changes keeps it, and so its fingerprint).
const keyWebCert = "web.certificate"

// webCertificate is the certificate the web server speaks HTTPS with
// (nil: plain HTTP): the operator's files, or the self-signed one kept
// in the store, generated when missing or expired.
func (a *App) webCertificate(cfg *config.Config) (*tls.Certificate, error) {
	w := cfg.Web
	if !w.HTTPS() {
		return nil, nil
	}
	if w.OperatorCert() {
		return web.LoadPair(w.TLS.Cert, w.TLS.Key)
	}
	now := time.Now()
	var c web.Cert
	found, err := a.store.Get(store.State, keyWebCert, &c)
	if err != nil {
		return nil, fmt.Errorf("web: stored certificate: %w", err)
	}
	if found {
		pair, err := c.Pair(now)
		if err == nil {
			return pair, nil
		}
		a.log.Warn("web: the stored self-signed certificate is unusable; generating a new one", "err", err)
	}
	c, err = web.SelfSigned(cfg.Node.Name, webHosts(cfg), now)
	if err != nil {
		return nil, err
	}
	pair, err := c.Pair(now)
	if err != nil {
		return nil, err
	}
	if err := a.store.Put(store.State, keyWebCert, c); err != nil {
		return nil, fmt.Errorf("web: keep the self-signed certificate: %w", err)
	}
	a.events.Event("web.certificate", cfg.Node.Name, "self-signed web certificate generated, SHA-256 "+web.Fingerprint(pair))
	return pair, nil
}

// webHosts are the names and addresses the self-signed certificate is
// made for: the listen address, the management address, web.names.
func webHosts(cfg *config.Config) []string {
	var hosts []string
	if ap, err := netip.ParseAddrPort(cfg.Web.Listen); err == nil && !ap.Addr().IsUnspecified() {
		hosts = append(hosts, ap.Addr().String())
	}
	if m := cfg.Network.Management; m != nil && m.Address.IsValid() {
		hosts = append(hosts, m.Address.Addr().String())
	}
	return append(hosts, cfg.Web.Names...)
}

// webWarnings are cfg's unsafe settings, as the web server shows them.
func webWarnings(cfg *config.Config) []web.Warning {
	ws := make([]web.Warning, len(cfg.Warnings))
	for i, p := range cfg.Warnings {
		ws[i] = web.Warning{Setting: p.Path, Message: p.Msg}
	}
	return ws
}

// webAccess applies what a reload may change without a restart: access
// lists, names, alarms.
func webAccess(s *web.Server, cfg *config.Config) {
	s.SetOpenTo(cfg.Web.OpenTo)
	s.SetAdminFrom(cfg.Web.AdminFrom, cfg.Web.OpenToActs())
	s.SetNames(cfg.Web.Names)
	s.SetWarnings(webWarnings(cfg))
}
