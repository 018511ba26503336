package web

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"time"
)

// SelfSignedLifetime is how long a generated certificate is valid; it
// is generated again (a new fingerprint) once expired.
const SelfSignedLifetime = 10 * 365 * 24 * time.Hour

// Cert is a certificate and its key in PEM, as kept in the store.
type Cert struct {
	CertPEM []byte    `json:"cert_pem"`
	KeyPEM  []byte    `json:"key_pem"`
	Created time.Time `json:"created"`
}

// SelfSigned makes an ECDSA P-256 certificate for hosts (names and IP
// addresses; loopback and localhost are always added), valid from a day
// before now (a box's clock may lag) for SelfSignedLifetime.
func SelfSigned(node string, hosts []string, now time.Time) (Cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Cert{}, fmt.Errorf("self-signed certificate: key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return Cert{}, fmt.Errorf("self-signed certificate: serial: %w", err)
	}
	tpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: node, Organization: []string{"sipedge (self-signed)"}},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(SelfSignedLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	seen := map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true}
	for _, h := range hosts {
		if h == "" || seen[h] {
			continue
		}
		seen[h] = true
		if a, err := netip.ParseAddr(h); err == nil {
			if !a.IsUnspecified() {
				tpl.IPAddresses = append(tpl.IPAddresses, a.AsSlice())
			}
		} else {
			tpl.DNSNames = append(tpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		return Cert{}, fmt.Errorf("self-signed certificate: %w", err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Cert{}, fmt.Errorf("self-signed certificate: key: %w", err)
	}
	return Cert{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}),
		Created: now.UTC(),
	}, nil
}

// Pair parses c into a certificate for the TLS server, checking that it
// is valid at now.
func (c Cert) Pair(now time.Time) (*tls.Certificate, error) {
	pair, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	if now.After(pair.Leaf.NotAfter) {
		return nil, fmt.Errorf("certificate expired on %s", pair.Leaf.NotAfter.UTC().Format(time.DateOnly))
	}
	return &pair, nil
}

// LoadPair reads the operator's certificate (PEM, chain after the leaf)
// and key files.
func LoadPair(certFile, keyFile string) (*tls.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("web.tls: %w", err)
	}
	if pair.Leaf == nil {
		return nil, errors.New("web.tls: no certificate in " + certFile)
	}
	return &pair, nil
}

// Fingerprint is the SHA-256 of the certificate (DER), as browsers show
// it: upper-case hex pairs joined by colons.
func Fingerprint(c *tls.Certificate) string {
	if c == nil || len(c.Certificate) == 0 {
		return ""
	}
	sum := sha256.Sum256(c.Certificate[0])
	var b strings.Builder
	for i, x := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", x)
	}
	return b.String()
}

// SPKIHash is the base64 SHA-256 of the certificate's public key, the
// form browsers pin (Chromium's --ignore-certificate-errors-spki-list).
func SPKIHash(c *tls.Certificate) string {
	if c == nil || c.Leaf == nil {
		return ""
	}
	sum := sha256.Sum256(c.Leaf.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// tlsConfig is the server side: TLS 1.2 and later, the certificate taken
// at each handshake (a reload replaces it).
func (s *Server) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if c := s.cert.Load(); c != nil {
				return c, nil
			}
			return nil, errors.New("web: no certificate")
		},
	}
}
