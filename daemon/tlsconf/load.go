package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// CertFile is a certificate and its private key, PEM files. The
// certificate file holds the leaf first, then any intermediates.
type CertFile struct {
	Cert string
	Key  string
}

// The roles of a file in the expiry metric.
const (
	RoleServer = "server" // a certificate the balancer presents to callers
	RoleClient = "client" // a certificate the balancer presents to the Cores
	RoleCA     = "ca"     // a CA that peers' certificates must chain to
)

// Expiry is when a loaded file stops being good: the earliest NotAfter
// of its certificates (a leaf and its intermediates, or a CA bundle).
type Expiry struct {
	File     string
	Role     string // RoleServer, RoleClient or RoleCA
	NotAfter time.Time
}

// loadPair loads a certificate and its key; the error names the file at
// fault.
func loadPair(f CertFile) (*tls.Certificate, error) {
	if f.Cert == "" || f.Key == "" {
		return nil, fmt.Errorf("certificate %q with key %q: both files are needed", f.Cert, f.Key)
	}
	certPEM, chain, err := readCerts(f.Cert)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(f.Key)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", f.Key, err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("key %s (of certificate %s): %w", f.Key, f.Cert, err)
	}
	c.Leaf = chain[0]
	return &c, nil
}

// loadCAs loads a file of CA certificates into a pool.
func loadCAs(file string) (*x509.CertPool, []*x509.Certificate, error) {
	_, certs, err := readCerts(file)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, certs, nil
}

// readCerts reads and parses every CERTIFICATE block of a PEM file; it
// fails when there is none.
func readCerts(file string) ([]byte, []*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate %s: %w", file, err)
	}
	var certs []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("certificate %s: block %d: %w", file, len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, nil, fmt.Errorf("certificate %s: %w", file, errNoCertificate)
	}
	return data, certs, nil
}

var errNoCertificate = errors.New("no PEM CERTIFICATE block in the file")

// expiry returns the earliest NotAfter of certs (a chain, a CA bundle)
// and logs a warning for any certificate outside its validity at now.
func expiry(log *slog.Logger, file, role string, certs []*x509.Certificate, now time.Time) Expiry {
	e := Expiry{File: file, Role: role}
	for _, c := range certs {
		if e.NotAfter.IsZero() || c.NotAfter.Before(e.NotAfter) {
			e.NotAfter = c.NotAfter
		}
		switch {
		case now.After(c.NotAfter):
			log.Warn("tls: certificate has expired; loaded anyway", "file", file, "role", role,
				"subject", c.Subject.String(), "not_after", c.NotAfter.UTC().Format(time.RFC3339))
		case now.Before(c.NotBefore):
			log.Warn("tls: certificate is not valid yet; loaded anyway", "file", file, "role", role,
				"subject", c.Subject.String(), "not_before", c.NotBefore.UTC().Format(time.RFC3339))
		}
	}
	return e
}

func orDefault(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}

func orNow(f func() time.Time) func() time.Time {
	if f == nil {
		return time.Now
	}
	return f
}
