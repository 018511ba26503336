package tlsconf

import (
	"crypto/tls"
	"log/slog"
	"strings"
	"testing"

	"github.com/sipedge/sipedge/daemon/tlsconf/tlstest"
)

func serial(p tlstest.Pair) string { return p.Leaf.SerialNumber.String() }

func TestSNIChoosesCertificate(t *testing.T) {
	ca := tlstest.NewCA(t, "sni")
	a := ca.Server(t, "a.example.com")
	b := ca.Server(t, "*.b.example.com")
	ip := ca.Server(t, "127.0.0.1")
	st, err := NewStore(ServerOptions{Certificates: []CertFile{{a.Cert, a.Key}, {b.Cert, b.Key}, {ip.Cert, ip.Key}}})
	if err != nil {
		t.Fatal(err)
	}
	s := serve(t, st.ServerConfig())
	for _, tt := range []struct {
		sni  string
		want tlstest.Pair
		why  string
	}{
		{"a.example.com", a, "exact SAN"},
		{"A.Example.COM.", a, "case and trailing dot ignored"},
		{"x.b.example.com", b, "wildcard SAN"},
		{"y.x.b.example.com", a, "a wildcard covers one label only: the first certificate"},
		{"b.example.com", a, "a wildcard does not cover its parent: the first certificate"},
		{"other.example.org", a, "unknown name: the first certificate"},
		{"", ip, "no SNI: the certificate for the address reached"},
	} {
		if got := servedCert(t, s, tt.sni); got != serial(tt.want) {
			t.Errorf("SNI %q (%s): served serial %s, want %s", tt.sni, tt.why, got, serial(tt.want))
		}
	}
}

func TestServerConfigMinVersion(t *testing.T) {
	set := tlstest.NewSet(t, "edge.example.com")
	st, err := NewStore(ServerOptions{Certificates: []CertFile{{set.Server.Cert, set.Server.Key}}})
	if err != nil {
		t.Fatal(err)
	}
	s := serve(t, st.ServerConfig())
	_, err = dial(t, s, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11})
	if err == nil {
		t.Fatal("a TLS 1.1 client was accepted")
	}
	if r := s.next(t); r.err == nil {
		t.Fatal("the server completed a TLS 1.1 handshake")
	}
}

func TestReloadSwapsForNewConnectionsOnly(t *testing.T) {
	ca := tlstest.NewCA(t, "reload")
	first, second := ca.Server(t, "edge.example.com"), ca.Server(t, "edge.example.com")
	// The store reads the files of "first"; the test rewrites them.
	live := CertFile{Cert: first.Cert, Key: first.Key}
	log, logs := logBuffer()
	st, err := NewStore(ServerOptions{Certificates: []CertFile{live}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	s := serve(t, st.ServerConfig())
	old, err := dial(t, s, &tls.Config{InsecureSkipVerify: true, ServerName: "edge.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	s.next(t)
	if got := old.ConnectionState().PeerCertificates[0].SerialNumber.String(); got != serial(first) {
		t.Fatalf("before reload: serial %s, want %s", got, serial(first))
	}

	copyFile(t, second.Cert, live.Cert)
	copyFile(t, second.Key, live.Key)
	if err := st.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := servedCert(t, s, "edge.example.com"); got != serial(second) {
		t.Errorf("after reload: new connection got serial %s, want %s", got, serial(second))
	}
	if err := echo(old, "still here"); err != nil {
		t.Errorf("the connection made before the reload broke: %v", err)
	}
	if !strings.Contains(logs.String(), "certificates reloaded") {
		t.Errorf("no log of the reload: %s", logs)
	}
}

func TestBadReloadKeepsOldMaterial(t *testing.T) {
	ca := tlstest.NewCA(t, "bad")
	good, other := ca.Server(t, "edge.example.com"), ca.Server(t, "edge.example.com")
	garbage := tlstest.WriteFile(t, "garbage.pem", []byte("not PEM at all\n"))
	for _, tt := range []struct {
		name  string
		spoil func(live CertFile, ca *string)
		file  func(live CertFile, ca string) string // the file the error must name
		want  string
	}{
		{"key is not a key", func(l CertFile, _ *string) { copyFile(t, garbage, l.Key) },
			func(l CertFile, _ string) string { return l.Key }, "key"},
		{"key does not match", func(l CertFile, _ *string) { copyFile(t, other.Key, l.Key) },
			func(l CertFile, _ string) string { return l.Key }, "does not match"},
		{"certificate is not PEM", func(l CertFile, _ *string) { copyFile(t, garbage, l.Cert) },
			func(l CertFile, _ string) string { return l.Cert }, "no PEM CERTIFICATE"},
		{"certificate is gone", func(l CertFile, _ *string) { removeFile(t, l.Cert) },
			func(l CertFile, _ string) string { return l.Cert }, "no such file"},
		{"client CA is not PEM", func(_ CertFile, c *string) { copyFile(t, garbage, *c) },
			func(_ CertFile, c string) string { return c }, "client CA"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			live := CertFile{Cert: tlstest.WriteFile(t, "cert.pem", nil), Key: tlstest.WriteFile(t, "key.pem", nil)}
			copyFile(t, good.Cert, live.Cert)
			copyFile(t, good.Key, live.Key)
			clientCA := tlstest.WriteFile(t, "ca.pem", nil)
			copyFile(t, ca.File, clientCA)
			log, logs := logBuffer()
			st, err := NewStore(ServerOptions{Certificates: []CertFile{live}, ClientCA: clientCA, Verify: VerifyOptional, Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			s := serve(t, st.ServerConfig())
			tt.spoil(live, &clientCA)
			err = st.Reload()
			if err == nil {
				t.Fatal("reload of broken material succeeded")
			}
			if f := tt.file(live, clientCA); !strings.Contains(err.Error(), f) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name %s or say %q", err, f, tt.want)
			}
			if !strings.Contains(logs.String(), "reload failed") {
				t.Errorf("the failed reload is not logged: %s", logs)
			}
			if got := servedCert(t, s, "edge.example.com"); got != serial(good) {
				t.Errorf("after a failed reload: served serial %s, want the old %s", got, serial(good))
			}
			// And a NewStore from the same files fails the same way.
			if _, err := NewStore(ServerOptions{Certificates: []CertFile{live}, ClientCA: clientCA, Verify: VerifyOptional}); err == nil {
				t.Error("NewStore accepted the broken files")
			}
		})
	}
}

func TestExpiredCertificateLoadsWithWarning(t *testing.T) {
	set := tlstest.NewSet(t, "edge.example.com")
	log, logs := logBuffer()
	st, err := NewStore(ServerOptions{Certificates: []CertFile{{set.Expired.Cert, set.Expired.Key}}, Logger: log})
	if err != nil {
		t.Fatalf("an expired certificate is refused: %v", err)
	}
	if !strings.Contains(logs.String(), "expired") || !strings.Contains(logs.String(), set.Expired.Cert) {
		t.Errorf("no warning naming the expired file: %s", logs)
	}
	if e := st.Expiries(); len(e) != 1 || !e[0].NotAfter.Equal(set.Expired.Leaf.NotAfter) {
		t.Errorf("expiries = %+v", e)
	}
}

func TestNewStoreRefusesIncompleteOptions(t *testing.T) {
	set := tlstest.NewSet(t, "edge.example.com")
	cert := []CertFile{{set.Server.Cert, set.Server.Key}}
	for _, tt := range []struct {
		name string
		o    ServerOptions
		want string
	}{
		{"no certificate", ServerOptions{}, "at least one certificate"},
		{"require without CA", ServerOptions{Certificates: cert, Verify: VerifyRequire}, "client CA"},
		{"optional without CA", ServerOptions{Certificates: cert, Verify: VerifyOptional}, "client CA"},
		{"unknown mode", ServerOptions{Certificates: cert, Verify: "sometimes"}, "want none, optional or require"},
		{"key missing", ServerOptions{Certificates: []CertFile{{Cert: set.Server.Cert}}}, "both files"},
	} {
		if _, err := NewStore(tt.o); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestUpdateChangesFilesAndMode(t *testing.T) {
	set := tlstest.NewSet(t, "edge.example.com")
	other := set.CA.Server(t, "edge.example.com")
	st, err := NewStore(ServerOptions{Certificates: []CertFile{{set.Server.Cert, set.Server.Key}}})
	if err != nil {
		t.Fatal(err)
	}
	s := serve(t, st.ServerConfig())
	// A bad update (a file that is not there) changes nothing.
	if err := st.Update(ServerOptions{Certificates: []CertFile{{other.Cert, other.Key + ".gone"}}}); err == nil || !strings.Contains(err.Error(), other.Key+".gone") {
		t.Fatalf("update with a missing key: %v", err)
	}
	if got := servedCert(t, s, "edge.example.com"); got != serial(set.Server) {
		t.Fatalf("after a failed update: serial %s", got)
	}
	if err := st.Update(ServerOptions{Certificates: []CertFile{{other.Cert, other.Key}}, ClientCA: set.CA.File, Verify: VerifyRequire}); err != nil {
		t.Fatal(err)
	}
	dial(t, s, &tls.Config{InsecureSkipVerify: true})
	if r := s.next(t); r.err == nil {
		t.Fatal("after the update to require, a client without a certificate got in")
	}
	// Reload now reads the updated list.
	if err := st.Reload(); err != nil {
		t.Fatal(err)
	}
	if e := st.Expiries(); len(e) != 2 || e[0].File != other.Cert || e[1].File != set.CA.File {
		t.Errorf("expiries after update = %+v", e)
	}
}

// TestReloadDuringHandshakes: handshakes racing reloads each get one
// whole material or the other (run with -race).
func TestReloadDuringHandshakes(t *testing.T) {
	ca := tlstest.NewCA(t, "race")
	a, b := ca.Server(t, "edge.example.com"), ca.Server(t, "edge.example.com")
	st, err := NewStore(ServerOptions{Certificates: []CertFile{{a.Cert, a.Key}}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s := serve(t, st.ServerConfig())
	done := make(chan error, 1)
	go func() {
		for i := range 20 {
			p := []tlstest.Pair{a, b}[i%2]
			if err := st.Update(ServerOptions{Certificates: []CertFile{{p.Cert, p.Key}}}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range 20 {
		if got := servedCert(t, s, "edge.example.com"); got != serial(a) && got != serial(b) {
			t.Fatalf("served serial %s, neither %s nor %s", got, serial(a), serial(b))
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
