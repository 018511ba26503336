package web

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestHostHeader: a page served from a rebound DNS name reaches the box
// with that name as Host and is refused; the box's own names and
// addresses are not. The old code answered every Host.
func TestHostHeader(t *testing.T) {
	s, err := New(Options{Ctl: newFake(), Listen: "192.0.2.11:443", Names: []string{"Edge-A.example.net", "198.51.100.11"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host string
		want int
	}{
		{"evil.example", http.StatusMisdirectedRequest},
		{"evil.example:443", http.StatusMisdirectedRequest},
		{"192.0.2.12", http.StatusMisdirectedRequest},
		{"", http.StatusMisdirectedRequest},
		{"edge-a.example.net", 200},
		{"EDGE-A.example.net.:443", 200},
		{"198.51.100.11:443", 200},
		{"192.0.2.11:443", 200},
		{"127.0.0.1:8080", 200},
		{"[::1]:8080", 200},
		{"localhost:8080", 200},
		{"192.0.2.99:443", 200}, // the address the request came in on
	} {
		r := httptest.NewRequest("GET", "/api/status", nil)
		r.RemoteAddr, r.Host = "127.0.0.1:40000", tc.host
		r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 99), Port: 443}))
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("Host %q: %d, want %d", tc.host, w.Code, tc.want)
		}
	}
}

// serveTLS runs s over HTTPS on loopback; the client trusts exactly its
// certificate.
func serveTLS(t *testing.T, s *Server, cert *tls.Certificate) (base string, pool *x509.CertPool) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	pool = x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	return "https://" + ln.Addr().String(), pool
}

func TestHTTPS(t *testing.T) {
	c, err := SelfSigned("edge-t", []string{"192.0.2.11", "edge-t.example.net"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := c.Pair(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if fp := Fingerprint(cert); !regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`).MatchString(fp) {
		t.Errorf("fingerprint %q: want 32 upper-case hex pairs joined by colons", fp)
	}
	if cert.Leaf.PublicKeyAlgorithm != x509.ECDSA || cert.Leaf.VerifyHostname("edge-t.example.net") != nil || cert.Leaf.VerifyHostname("192.0.2.11") != nil || cert.Leaf.VerifyHostname("127.0.0.1") != nil {
		t.Errorf("certificate: %v, names %v %v", cert.Leaf.PublicKeyAlgorithm, cert.Leaf.DNSNames, cert.Leaf.IPAddresses)
	}
	for _, hsts := range []bool{false, true} {
		s, err := New(Options{Ctl: newFake(), Certificate: cert, HSTS: hsts})
		if err != nil {
			t.Fatal(err)
		}
		base, pool := serveTLS(t, s, cert)
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		resp, err := hc.Get(base + "/api/session")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if ck := resp.Header.Get("Set-Cookie"); !strings.Contains(ck, "; Secure") || !strings.Contains(ck, "HttpOnly") {
			t.Errorf("cookie over TLS: %q, want Secure and HttpOnly", ck)
		}
		if got := resp.Header.Get("Strict-Transport-Security") != ""; got != hsts {
			t.Errorf("HSTS sent %v, want %v (only with the operator's certificate)", got, hsts)
		}
		if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
			t.Errorf("TLS state %+v", resp.TLS)
		}
		// TLS 1.1 is refused.
		old := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}}}
		if resp, err := old.Get(base + "/api/session"); err == nil {
			resp.Body.Close()
			t.Error("a TLS 1.1 client was served")
		}
		// Plain HTTP to the HTTPS port gets nothing of the API.
		if resp, err := http.Get(strings.Replace(base, "https:", "http:", 1) + "/api/status"); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				t.Errorf("plain HTTP to the HTTPS port: 200 %s", body)
			}
		}
	}
	// Expired: refused.
	if _, err := c.Pair(time.Now().Add(SelfSignedLifetime + time.Hour)); err == nil {
		t.Error("an expired certificate was accepted")
	}
}

// TestWarningsShown: the alarms are in the overview and the metric.
func TestWarningsShown(t *testing.T) {
	s, c := newServer(t, newFake(), nil, DefaultLockout)
	s.SetWarnings([]Warning{{Setting: "web.listen", Message: "plain HTTP on 192.0.2.11:8080"}})
	_, v := c.do("GET", "/api/overview", "", nil)
	ws, _ := v["warnings"].([]any)
	if len(ws) != 1 || !strings.Contains(ws[0].(map[string]any)["message"].(string), "plain HTTP") {
		t.Errorf("overview warnings = %v", v["warnings"])
	}
	if n := testutil.ToFloat64(s.unsafe.WithLabelValues("web.listen")); n != 1 {
		t.Errorf("sipedge_web_unsafe_config{setting=web.listen} = %v, want 1", n)
	}
	s.SetWarnings(nil)
	if n := testutil.ToFloat64(s.unsafe.WithLabelValues("web.listen")); n != 0 {
		t.Errorf("after the fix: %v, want 0", n)
	}
}
