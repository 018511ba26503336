// Package tlstest makes the certificates that TLS tests need: a CA, server
// and client leaves signed by it, an expired leaf, and (from a second CA)
// a certificate that the first CA does not vouch for. Everything is
// written as PEM files in the test's temporary directory, and the paths
// are returned, because the daemon's TLS material is loaded from files.
//
// Keys are ECDSA P-256 (fast to generate); certificates are valid from an
// hour ago for a day, except the expired one.
package tlstest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// CA is a certificate authority held in memory, its certificate written
// to File.
type CA struct {
	Name string
	Cert *x509.Certificate
	Key  crypto.Signer
	// File is the CA certificate's PEM file (a client_ca or core_ca).
	File string
	dir  string
}

// Pair is one leaf certificate: its PEM files and the parsed certificate.
type Pair struct {
	Cert string // certificate PEM file
	Key  string // private key PEM file (PKCS #8)
	Leaf *x509.Certificate
}

// Spec describes a leaf for CA.Leaf.
type Spec struct {
	// Names are DNS names (wildcards such as *.example.com allowed) and
	// IP addresses, told apart by parsing.
	Names     []string
	CN        string
	Client    bool // client authentication (else server authentication)
	NotBefore time.Time
	NotAfter  time.Time
}

var serial atomic.Int64

// NewCA makes a CA named name and writes its certificate to
// <tempdir>/<name>-ca.pem.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key := newKey(t)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: name + " test CA", Organization: []string{"sipedge tests"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatalf("tlstest: CA %s: %v", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("tlstest: CA %s: %v", name, err)
	}
	dir := t.TempDir()
	ca := &CA{Name: name, Cert: cert, Key: key, dir: dir, File: filepath.Join(dir, name+"-ca.pem")}
	writePEM(t, ca.File, "CERTIFICATE", der)
	return ca
}

// Server makes a server leaf for names (DNS names or IP addresses); the
// first DNS name is also the subject CN.
func (ca *CA) Server(t testing.TB, names ...string) Pair {
	t.Helper()
	return ca.Leaf(t, Spec{Names: names})
}

// Client makes a client leaf for name: a DNS name in the SAN and the
// subject CN. An empty name makes a client certificate with the CN
// "no-san-client" and no SAN.
func (ca *CA) Client(t testing.TB, name string) Pair {
	t.Helper()
	if name == "" {
		return ca.Leaf(t, Spec{CN: "no-san-client", Client: true})
	}
	return ca.Leaf(t, Spec{Names: []string{name}, Client: true})
}

// Expired makes a server leaf for names that expired an hour ago.
func (ca *CA) Expired(t testing.TB, names ...string) Pair {
	t.Helper()
	now := time.Now()
	return ca.Leaf(t, Spec{Names: names, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
}

// Leaf makes the leaf s describes, signed by ca, and writes it to
// <tempdir>/<first name>-<serial>.pem and -key.pem.
func (ca *CA) Leaf(t testing.TB, s Spec) Pair {
	t.Helper()
	key := newKey(t)
	now := time.Now()
	if s.NotBefore.IsZero() {
		s.NotBefore = now.Add(-time.Hour)
	}
	if s.NotAfter.IsZero() {
		s.NotAfter = now.Add(24 * time.Hour)
	}
	n := serial.Add(1)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(n),
		Subject:      pkix.Name{CommonName: s.CN, Organization: []string{"sipedge tests"}},
		NotBefore:    s.NotBefore,
		NotAfter:     s.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if s.Client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	for _, name := range s.Names {
		if ip := net.ParseIP(name); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, name)
		}
	}
	if tmpl.Subject.CommonName == "" && len(tmpl.DNSNames) > 0 {
		tmpl.Subject.CommonName = tmpl.DNSNames[0]
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatalf("tlstest: leaf %v: %v", s.Names, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("tlstest: leaf %v: %v", s.Names, err)
	}
	base := "leaf"
	if len(s.Names) > 0 {
		base = s.Names[0]
	} else if s.CN != "" {
		base = s.CN
	}
	base = strings.NewReplacer("*", "star", ":", "_", "/", "_").Replace(base)
	prefix := filepath.Join(ca.dir, base+"-"+big.NewInt(n).String())
	p := Pair{Cert: prefix + ".pem", Key: prefix + "-key.pem", Leaf: leaf}
	writePEM(t, p.Cert, "CERTIFICATE", der)
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("tlstest: key: %v", err)
	}
	writePEM(t, p.Key, "PRIVATE KEY", pk)
	return p
}

// Set is the usual material of a test, from one call to NewSet.
type Set struct {
	CA      *CA  // the trusted CA
	Server  Pair // server leaf for the names given to NewSet
	Client  Pair // client leaf for "client.example.net"
	Expired Pair // server leaf for the same names, expired
	Other   *CA  // a second CA, not trusted
	Foreign Pair // server leaf for the same names, signed by Other
}

// ClientName is the name in Set.Client.
const ClientName = "client.example.net"

// NewSet makes a CA with a server leaf for names, a client leaf, an
// expired leaf, and a second CA with a server leaf for the same names.
func NewSet(t testing.TB, names ...string) Set {
	t.Helper()
	ca, other := NewCA(t, "trusted"), NewCA(t, "other")
	return Set{
		CA: ca, Server: ca.Server(t, names...), Client: ca.Client(t, ClientName), Expired: ca.Expired(t, names...),
		Other: other, Foreign: other.Server(t, names...),
	}
}

// WriteFile writes data to a new file in the test's temporary directory
// and returns its path (for broken PEM files).
func WriteFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatalf("tlstest: %v", err)
	}
	return p
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("tlstest: key: %v", err)
	}
	return k
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatalf("tlstest: %v", err)
	}
}
