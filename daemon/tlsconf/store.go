package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ServerOptions is the server side's material and policy.
type ServerOptions struct {
	// Certificates are presented to callers, chosen by SNI; the first is
	// the default (no SNI, or a name none of them carries).
	Certificates []CertFile
	// ClientCA is the PEM file of the CAs that client certificates must
	// chain to; needed by VerifyOptional and VerifyRequire.
	ClientCA string
	// Verify is whether client certificates are asked for ("" = none).
	Verify VerifyMode
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock for the expiry warnings (default time.Now).
	Now func() time.Time
}

// Store is the server side's TLS material. Its ServerConfig reads the
// material current at each handshake, so Reload changes what new
// handshakes see; a connection already up keeps what it negotiated.
type Store struct {
	opt ServerOptions
	log *slog.Logger
	now func() time.Time

	reload sync.Mutex // one Reload at a time
	cur    atomic.Pointer[material]
}

// material is one consistent load of the files, never changed after.
type material struct {
	certs    []*tls.Certificate
	names    [][]string // lower-case DNS SANs of certs[i]
	config   *tls.Config
	expiries []Expiry
}

// NewStore loads the files of o; it fails, naming the file, when one is
// missing or bad.
func NewStore(o ServerOptions) (*Store, error) {
	o, err := o.check()
	if err != nil {
		return nil, err
	}
	s := &Store{opt: o, log: orDefault(o.Logger), now: orNow(o.Now)}
	m, err := s.load(o)
	if err != nil {
		return nil, err
	}
	s.cur.Store(m)
	return s, nil
}

// check validates o and returns it with its own copy of the list.
func (o ServerOptions) check() (ServerOptions, error) {
	v, err := ParseVerifyMode(string(o.Verify))
	if err != nil {
		return o, err
	}
	o.Verify = v
	if len(o.Certificates) == 0 {
		return o, errors.New("tlsconf: the server side needs at least one certificate")
	}
	if o.Verify != VerifyNone && o.ClientCA == "" {
		return o, fmt.Errorf("tlsconf: client verification %q needs a client CA file", o.Verify)
	}
	o.Certificates = append([]CertFile(nil), o.Certificates...)
	return o, nil
}

// Reload reads every file again and, when all of them load, makes the
// new material the one new handshakes use. On an error nothing changes
// and the error names the file at fault.
func (s *Store) Reload() error {
	s.reload.Lock()
	defer s.reload.Unlock()
	return s.swap(s.opt)
}

// Update is Reload with other files or another mode (a SIGHUP that
// changed sip.tls): the same all-or-nothing swap, for new handshakes
// only. Logger and Now stay those of NewStore.
func (s *Store) Update(o ServerOptions) error {
	o, err := o.check()
	if err != nil {
		return err
	}
	s.reload.Lock()
	defer s.reload.Unlock()
	return s.swap(o)
}

// swap loads o and makes it current; s.reload is held.
func (s *Store) swap(o ServerOptions) error {
	m, err := s.load(o)
	if err != nil {
		s.log.Error("tls: reload failed; the previous certificates stay in use", "err", err)
		return err
	}
	s.opt = o
	s.cur.Store(m)
	s.log.Info("tls: certificates reloaded", "certificates", len(m.certs), "client_ca", o.ClientCA, "verify_clients", string(o.Verify))
	return nil
}

// ServerConfig returns the tls.Config for the listeners: TLS 1.2 at
// least, the certificate chosen by SNI from the current material, and
// client certificates asked for and verified per the mode. Build the
// listeners from it once; Reload needs no new config.
func (s *Store) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Every handshake takes the config of the material current at
		// its start (certificate, client CAs, mode alike).
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.cur.Load().config, nil
		},
		// Not used while GetConfigForClient answers; there so that the
		// config is complete on its own (e.g. for http.Server checks).
		GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.cur.Load().certificate(h), nil
		},
	}
}

// Expiries are the current material's files and their expiry.
func (s *Store) Expiries() []Expiry {
	return append([]Expiry(nil), s.cur.Load().expiries...)
}

// load reads the files of o into new material.
func (s *Store) load(o ServerOptions) (*material, error) {
	now := s.now()
	m := &material{}
	for _, f := range o.Certificates {
		c, err := loadPair(f)
		if err != nil {
			return nil, fmt.Errorf("tlsconf: %w", err)
		}
		chain := make([]*x509.Certificate, 0, len(c.Certificate))
		for _, der := range c.Certificate {
			x, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, fmt.Errorf("tlsconf: certificate %s: %w", f.Cert, err)
			}
			chain = append(chain, x)
		}
		m.certs = append(m.certs, c)
		m.names = append(m.names, dnsNames(c.Leaf))
		m.expiries = append(m.expiries, expiry(s.log, f.Cert, RoleServer, chain, now))
	}
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		ClientAuth:     o.Verify.clientAuth(),
		GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) { return m.certificate(h), nil },
	}
	if o.ClientCA != "" {
		pool, cas, err := loadCAs(o.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("tlsconf: client CA: %w", err)
		}
		cfg.ClientCAs = pool
		m.expiries = append(m.expiries, expiry(s.log, o.ClientCA, RoleCA, cas, now))
	}
	m.config = cfg
	return m, nil
}
