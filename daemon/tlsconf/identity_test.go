package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"slices"
	"testing"

	"github.com/sipedge/sipedge/daemon/tlsconf/tlstest"
)

func TestClientVerificationModes(t *testing.T) {
	set := tlstest.NewSet(t, "edge.example.com")
	foreignClient := set.Other.Client(t, "intruder.example.net")
	// The client presents its certificate whatever CAs the server
	// names (Go's client would keep a foreign one to itself).
	withCert := func(p tlstest.Pair) func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		c, err := tls.LoadX509KeyPair(p.Cert, p.Key)
		if err != nil {
			t.Fatal(err)
		}
		return func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	}
	type client struct {
		name  string
		certs func(*tls.CertificateRequestInfo) (*tls.Certificate, error)
	}
	good := client{"trusted cert", withCert(set.Client)}
	none := client{"no cert", nil}
	foreign := client{"cert from another CA", withCert(foreignClient)}
	for _, tt := range []struct {
		mode     VerifyMode
		client   client
		ok       bool
		identity []string
	}{
		{VerifyNone, good, true, nil},
		{VerifyNone, none, true, nil},
		{VerifyNone, foreign, true, nil},
		{VerifyOptional, good, true, []string{tlstest.ClientName}},
		{VerifyOptional, none, true, nil},
		{VerifyOptional, foreign, false, nil},
		{VerifyRequire, good, true, []string{tlstest.ClientName}},
		{VerifyRequire, none, false, nil},
		{VerifyRequire, foreign, false, nil},
	} {
		t.Run(string(tt.mode)+"/"+tt.client.name, func(t *testing.T) {
			st, err := NewStore(ServerOptions{
				Certificates: []CertFile{{set.Server.Cert, set.Server.Key}},
				ClientCA:     set.CA.File, Verify: tt.mode,
			})
			if err != nil {
				t.Fatal(err)
			}
			s := serve(t, st.ServerConfig())
			roots := x509.NewCertPool()
			roots.AddCert(set.CA.Cert)
			// The client's side may finish before the server rejects
			// its certificate (TLS 1.3): the server's outcome decides.
			dial(t, s, &tls.Config{RootCAs: roots, ServerName: "edge.example.com", GetClientCertificate: tt.client.certs})
			r := s.next(t)
			if (r.err == nil) != tt.ok {
				t.Fatalf("server handshake error = %v, want success %v", r.err, tt.ok)
			}
			if got := PeerIdentity(r.state); !slices.Equal(got, tt.identity) {
				t.Errorf("PeerIdentity = %q, want %q", got, tt.identity)
			}
		})
	}
}

func TestPeerIdentityOnlyForVerifiedChains(t *testing.T) {
	set := tlstest.NewSet(t, "edge.example.com")
	cnOnly := set.CA.Client(t, "")
	// A server that asks for a certificate without verifying it: the
	// certificate arrives, but names nobody.
	cert, err := tls.LoadX509KeyPair(set.Server.Cert, set.Server.Key)
	if err != nil {
		t.Fatal(err)
	}
	s := serve(t, &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequestClientCert})
	cc, err := tls.LoadX509KeyPair(set.Client.Cert, set.Client.Key)
	if err != nil {
		t.Fatal(err)
	}
	dial(t, s, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{cc}})
	r := s.next(t)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(r.state.PeerCertificates) == 0 {
		t.Fatal("the client sent no certificate: the test proves nothing")
	}
	if got := PeerIdentity(r.state); got != nil {
		t.Errorf("PeerIdentity of an unverified certificate = %q, want none", got)
	}

	// Verified: the SAN names; no SAN: the CN.
	verified := func(p tlstest.Pair) tls.ConnectionState {
		return tls.ConnectionState{PeerCertificates: []*x509.Certificate{p.Leaf}, VerifiedChains: [][]*x509.Certificate{{p.Leaf, set.CA.Cert}}}
	}
	if got := PeerIdentity(verified(set.Client)); !slices.Equal(got, []string{tlstest.ClientName}) {
		t.Errorf("SAN identity = %q", got)
	}
	if got := PeerIdentity(verified(cnOnly)); !slices.Equal(got, []string{"no-san-client"}) {
		t.Errorf("CN identity = %q", got)
	}
	if got := PeerIdentity(tls.ConnectionState{PeerCertificates: []*x509.Certificate{set.Client.Leaf}}); got != nil {
		t.Errorf("identity without a verified chain = %q", got)
	}
}
