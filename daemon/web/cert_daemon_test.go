package web_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/internal/daemontest"
	"github.com/sipedge/sipedge/daemon/web"
	"github.com/sipedge/sipedge/hal/testenv"
)

// webConfig writes a loopback config whose web section has tls.
func webConfig(t *testing.T, d *daemontest.Daemon, tls string) {
	d.WriteConfig(fmt.Sprintf(`node: {name: edge-cert, profile: single, platform: generic-x86_64, data_dir: %q}
web: {listen: "127.0.0.1:%d", tls: %s, names: [edge-cert.example.net]}
sip: {listen: ["udp:127.0.0.1:%d"]}
`, d.DataDir(), testenv.FreePort(t), tls, testenv.FreePort(t)))
}

// TestSelfSignedKept: the self-signed certificate is made once and kept
// in the store: a restart serves the same one (the operator's pin holds),
// and ctl web prints its SHA-256 as the daemon serves it.
func TestSelfSignedKept(t *testing.T) {
	testenv.Short(t, "starts the daemon twice")
	d := daemontest.New(t)
	webConfig(t, d, "{}")
	d.Start()
	var first web.Info
	d.CtlJSON(&first, "web")
	if first.Scheme != "https" || first.TLSSource != "self-signed" || first.HSTS || first.TLSFingerprint == "" {
		t.Fatalf("ctl web: %+v, want https, self-signed, no HSTS", first)
	}
	if out, _, _ := d.Ctl("web"); !strings.Contains(out, "SHA-256:      "+first.TLSFingerprint) || !strings.Contains(out, "https://127.0.0.1:") {
		t.Errorf("ctl web does not print the fingerprint:\n%s", out)
	}
	served := pinnedClient(first.TLSFingerprint)
	daemontest.WaitFor(t, 10*time.Second, "the page over the pinned certificate", func() bool {
		resp, err := served.Get(strings.TrimSuffix(first.URL, "/") + "/api/status")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
	if err := d.Stop(syscall.SIGTERM, 15*time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	d.Start()
	var again web.Info
	d.CtlJSON(&again, "web")
	if again.TLSFingerprint != first.TLSFingerprint {
		t.Errorf("the restart made a new certificate: %s, was %s", again.TLSFingerprint, first.TLSFingerprint)
	}
}

// TestOperatorCertificate: with the operator's files the daemon serves
// them, with HSTS, and ctl web says so; a reload serves renewed files.
func TestOperatorCertificate(t *testing.T) {
	testenv.Short(t, "starts the daemon")
	d := daemontest.New(t)
	c, err := web.SelfSigned("edge-cert.example.net", []string{"edge-cert.example.net"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	crt, key := filepath.Join(d.Dir, "web.crt"), filepath.Join(d.Dir, "web.key")
	os.WriteFile(crt, c.CertPEM, 0o644)
	os.WriteFile(key, c.KeyPEM, 0o600)
	webConfig(t, d, fmt.Sprintf("{cert: %q, key: %q}", crt, key))
	d.Start()
	var in web.Info
	d.CtlJSON(&in, "web")
	pair, _ := c.Pair(time.Now())
	if in.TLSSource != "operator" || !in.HSTS || in.TLSFingerprint != web.Fingerprint(pair) {
		t.Fatalf("ctl web: %+v, want the operator's certificate %s with HSTS", in, web.Fingerprint(pair))
	}
	hc := pinnedClient(in.TLSFingerprint)
	resp, err := hc.Get(strings.TrimSuffix(in.URL, "/") + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS with the operator's certificate")
	}

	// A renewed certificate is served after a reload, without a restart.
	renewed, err := web.SelfSigned("edge-cert.example.net", []string{"edge-cert.example.net"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(crt, renewed.CertPEM, 0o644)
	os.WriteFile(key, renewed.KeyPEM, 0o600)
	if _, errOut, code := d.Ctl("config", "reload"); code != 0 {
		t.Fatalf("config reload: %d %s", code, errOut)
	}
	pair, _ = renewed.Pair(time.Now())
	d.CtlJSON(&in, "web")
	if in.TLSFingerprint != web.Fingerprint(pair) {
		t.Fatalf("after the reload ctl web names %s, want the renewed %s", in.TLSFingerprint, web.Fingerprint(pair))
	}
	resp, err = pinnedClient(in.TLSFingerprint).Get(strings.TrimSuffix(in.URL, "/") + "/api/status")
	if err != nil {
		t.Fatalf("the renewed certificate is not served: %v", err)
	}
	resp.Body.Close()
}
