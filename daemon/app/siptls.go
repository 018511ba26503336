package app

import (
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipedge/sipedge/daemon/balancer"
	"github.com/sipedge/sipedge/daemon/config"
	"github.com/sipedge/sipedge/daemon/tlsconf"
)

// sipTLS is the TLS material of sip.tls for the balancer: the
// listeners' certificates (store, nil without a tls: listener), what
// tls: Cores are verified against and shown (client, nil without a tls:
// Core), and the trusted TLS names of security.trusted. A SIGHUP reads
// the files again (new handshakes take them, connections go on) and the
// trusted names.
type sipTLS struct {
	store    *tlsconf.Store
	client   *tlsconf.Client
	security atomic.Pointer[config.Security]
}

func serverOptions(t config.SIPTLS, log *slog.Logger) tlsconf.ServerOptions {
	o := tlsconf.ServerOptions{ClientCA: t.ClientCA, Verify: tlsconf.VerifyMode(t.VerifyClients), Logger: log}
	for _, c := range t.Certificates {
		o.Certificates = append(o.Certificates, tlsconf.CertFile{Cert: c.Cert, Key: c.Key})
	}
	return o
}

func clientOptions(t config.SIPTLS, log *slog.Logger) tlsconf.ClientOptions {
	o := tlsconf.ClientOptions{CA: t.CoreCA, Logger: log}
	if c := t.CoreCertificate; c != nil {
		o.Certificate = &tlsconf.CertFile{Cert: c.Cert, Key: c.Key}
	}
	return o
}

// newSIPTLS loads the material the configuration uses.
func newSIPTLS(cfg *config.Config, log *slog.Logger) (*sipTLS, error) {
	s := &sipTLS{}
	sec := cfg.Security
	s.security.Store(&sec)
	t := cfg.SIP.TLS
	var err error
	if cfg.SIP.HasTLSListener() {
		if s.store, err = tlsconf.NewStore(serverOptions(t, log)); err != nil {
			return nil, fmt.Errorf("sip.tls: %w", err)
		}
	}
	for _, c := range cfg.SIP.Cores {
		if tp, _, _ := config.SplitTransport(c.Address); tp == config.TransportTLS && s.client == nil {
			if s.client, err = tlsconf.NewClient(clientOptions(t, log)); err != nil {
				return nil, fmt.Errorf("sip.tls: %w", err)
			}
		}
	}
	return s, nil
}

// options are the balancer's TLS options.
func (s *sipTLS) options(cfg *config.Config) balancer.TLSOptions {
	o := balancer.TLSOptions{HandshakeTimeout: cfg.SIP.TLS.HandshakeTimeout.D(),
		Trusted: func(names []string) bool { return s.security.Load().TrustsTLSIdentity(names) }}
	if s.store != nil {
		o.Server = s.store.ServerConfig()
	}
	if s.client != nil {
		o.Client = s.client.Config
	}
	return o
}

// reload reads the files again (SIGHUP) and takes the trusted names of
// c; on an error the material in use stays.
func (s *sipTLS) reload(c *config.Config) error {
	sec := c.Security
	s.security.Store(&sec)
	if s.store != nil {
		if err := s.store.Update(serverOptions(c.SIP.TLS, nil)); err != nil {
			return fmt.Errorf("sip.tls: certificates kept: %w", err)
		}
	}
	if s.client != nil {
		if err := s.client.Update(clientOptions(c.SIP.TLS, nil)); err != nil {
			return fmt.Errorf("sip.tls: Core CA kept: %w", err)
		}
	}
	return nil
}

// collector exports the certificates' expiry (nil without any).
func (s *sipTLS) collector() prometheus.Collector {
	var src []tlsconf.ExpirySource
	if s.store != nil {
		src = append(src, s.store)
	}
	if s.client != nil {
		src = append(src, s.client)
	}
	if len(src) == 0 {
		return nil
	}
	return tlsconf.NewCollector(src...)
}
