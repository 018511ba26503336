package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ClientOptions is the client side's material: what the balancer trusts
// and presents when it dials a Core.
type ClientOptions struct {
	// CA is the PEM file of the CAs the Cores' certificates must chain
	// to; empty: the system roots.
	CA string
	// Certificate, when set, is presented to the Cores (mutual TLS).
	Certificate *CertFile
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock for the expiry warnings (default time.Now).
	Now func() time.Time
}

// Client builds the tls.Configs for dialling Cores. Reload reads its
// files again; configs built afterwards use the new material.
type Client struct {
	opt ClientOptions
	log *slog.Logger
	now func() time.Time

	reload sync.Mutex
	cur    atomic.Pointer[clientMaterial]
}

type clientMaterial struct {
	roots    *x509.CertPool // nil: system roots
	cert     *tls.Certificate
	sessions tls.ClientSessionCache
	expiries []Expiry
}

// sessionCacheSize is how many Cores' sessions are kept for resumption.
const sessionCacheSize = 256

// NewClient loads the files of o; it fails, naming the file, when one is
// missing or bad.
func NewClient(o ClientOptions) (*Client, error) {
	if o.Certificate != nil {
		c := *o.Certificate
		o.Certificate = &c
	}
	c := &Client{opt: o, log: orDefault(o.Logger), now: orNow(o.Now)}
	m, err := c.load(o)
	if err != nil {
		return nil, err
	}
	c.cur.Store(m)
	return c, nil
}

// Reload reads the files again and, when all of them load, uses them for
// the configs built from then on (connections up are not touched). The
// session cache starts empty, so that no session resumed afterwards was
// verified against the old CA. On an error nothing changes.
func (c *Client) Reload() error {
	c.reload.Lock()
	defer c.reload.Unlock()
	return c.swap(c.opt)
}

// Update is Reload with other files (a SIGHUP that changed the Core CA
// or the client certificate). Logger and Now stay those of NewClient.
func (c *Client) Update(o ClientOptions) error {
	if o.Certificate != nil {
		f := *o.Certificate
		o.Certificate = &f
	}
	c.reload.Lock()
	defer c.reload.Unlock()
	return c.swap(o)
}

// swap loads o and makes it current; c.reload is held.
func (c *Client) swap(o ClientOptions) error {
	m, err := c.load(o)
	if err != nil {
		c.log.Error("tls: reload of the Core-side material failed; the previous one stays in use", "err", err)
		return err
	}
	c.opt = o
	c.cur.Store(m)
	c.log.Info("tls: Core-side material reloaded", "ca", o.CA, "client_certificate", m.cert != nil)
	return nil
}

// Config returns the tls.Config for dialling the Core at addr (host:port
// or a bare host): TLS 1.2 at least, the Core's certificate verified
// against the CA (or the system roots) for serverName, the client
// certificate presented when there is one, sessions resumed from a
// cache shared by every config of this material. serverName may be
// empty only when addr's host is a DNS name (it is then the name
// verified): an IP address says nothing about whom to expect.
func (c *Client) Config(addr, serverName string) (*tls.Config, error) {
	if serverName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		if host == "" || net.ParseIP(host) != nil {
			return nil, fmt.Errorf("tlsconf: Core %s: %w", addr, ErrNoServerName)
		}
		serverName = host
	}
	m := c.cur.Load()
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		RootCAs:            m.roots,
		ServerName:         serverName,
		ClientSessionCache: m.sessions,
	}
	if m.cert != nil {
		cfg.Certificates = []tls.Certificate{*m.cert}
	}
	return cfg, nil
}

// ErrNoServerName is Config's error for a Core reached by IP address
// with no name to verify.
var ErrNoServerName = errors.New("an IP address needs the name to verify in the Core's certificate (tls_name)")

// Expiries are the current material's files and their expiry (the
// system roots are not listed).
func (c *Client) Expiries() []Expiry {
	return append([]Expiry(nil), c.cur.Load().expiries...)
}

func (c *Client) load(o ClientOptions) (*clientMaterial, error) {
	now := c.now()
	m := &clientMaterial{sessions: tls.NewLRUClientSessionCache(sessionCacheSize)}
	if o.CA != "" {
		pool, cas, err := loadCAs(o.CA)
		if err != nil {
			return nil, fmt.Errorf("tlsconf: Core CA: %w", err)
		}
		m.roots = pool
		m.expiries = append(m.expiries, expiry(c.log, o.CA, RoleCA, cas, now))
	}
	if f := o.Certificate; f != nil {
		cert, err := loadPair(*f)
		if err != nil {
			return nil, fmt.Errorf("tlsconf: client certificate: %w", err)
		}
		chain := make([]*x509.Certificate, 0, len(cert.Certificate))
		for _, der := range cert.Certificate {
			x, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, fmt.Errorf("tlsconf: certificate %s: %w", f.Cert, err)
			}
			chain = append(chain, x)
		}
		m.cert = cert
		m.expiries = append(m.expiries, expiry(c.log, f.Cert, RoleClient, chain, now))
	}
	return m, nil
}
