package streamload

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// PKI is a throwaway CA and a server certificate signed by it, as PEM
// files, for a TLS server under test (Kamailio's tls.cfg, sipedge).
type PKI struct {
	CAFile   string // the CA certificate: the client's -ca
	CertFile string // the server's certificate
	KeyFile  string // its private key (PKCS #8), mode 0600
	Name     string // the DNS name in the certificate (the client's server name)
}

// WritePKI writes a CA and a server certificate valid for a day for
// name and the IP addresses ips into dir. rsaBits 0 makes ECDSA P-256
// keys (cheap handshakes); 2048 or more makes RSA keys of that size
// (the server's signature per handshake costs about 20x more).
func WritePKI(dir, name string, ips []net.IP, rsaBits int) (PKI, error) {
	newKey := func() (crypto.Signer, error) {
		if rsaBits > 0 {
			return rsa.GenerateKey(rand.Reader, rsaBits)
		}
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	caKey, err := newKey()
	if err != nil {
		return PKI{}, err
	}
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: "streamload test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, caKey.Public(), caKey)
	if err != nil {
		return PKI{}, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return PKI{}, err
	}
	key, err := newKey()
	if err != nil {
		return PKI{}, err
	}
	usage := x509.KeyUsageDigitalSignature
	if rsaBits > 0 {
		usage |= x509.KeyUsageKeyEncipherment
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(now.UnixNano() + 1), Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames: []string{name}, IPAddresses: ips,
		KeyUsage: usage, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, key.Public(), caKey)
	if err != nil {
		return PKI{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return PKI{}, err
	}
	p := PKI{CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"), Name: name}
	for _, f := range []struct {
		path, typ string
		der       []byte
		mode      os.FileMode
	}{{p.CAFile, "CERTIFICATE", caDER, 0o644}, {p.CertFile, "CERTIFICATE", der, 0o644}, {p.KeyFile, "PRIVATE KEY", keyDER, 0o600}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), f.mode); err != nil {
			return PKI{}, err
		}
	}
	return p, nil
}
