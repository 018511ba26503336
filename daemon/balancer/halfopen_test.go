package balancer

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/sipedge/sipedge/daemon/internal/daemontest"
	"github.com/sipedge/sipedge/daemon/tlsconf/tlstest"
	"github.com/sipedge/sipedge/hal/testenv"
)

// TestTenThousandHalfOpen: the daemon with a tls: and a tcp: listener
// takes 5,000 TCP connections that never send and 5,000 that never
// begin their TLS handshake. Each costs bounded memory (measured: the
// daemon's RSS over the connections, logged, and held under 64 KiB), a
// call over TLS on another connection completes meanwhile, and every
// one of them is closed and counted once its timeout (2 s here) has
// passed.
func TestTenThousandHalfOpen(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 connections: not in -short")
	}
	const half = 5000
	set := tlstest.NewSet(t, "sip.example.net", "127.0.0.1")
	core, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer core.Close()
	udp, tlsPort, tcpPort := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	d := daemontest.New(t)
	d.WriteConfig(fmt.Sprintf(`node: {name: halfopen, profile: single, data_dir: %q}
log: {level: info, format: text}
web: {listen: ""}
sip:
  listen: ["udp:127.0.0.1:%d", "tls:127.0.0.1:%d", "tcp:127.0.0.1:%d"]
  core_port: -1
  probe: {interval: 1h, timeout: 1s}
  tcp: {max_connections: 12000, max_per_source: 12000, message_timeout: 2s}
  tls: {certificates: [{cert: %q, key: %q}], handshake_timeout: 2s}
  cores:
    - {name: core1, address: %q}
`, d.DataDir(), udp, tlsPort, tcpPort, set.Server.Cert, set.Server.Key, core.LocalAddr().String()))
	d.Start()
	stats := func() map[string]uint64 {
		var st ctlCores
		d.CtlJSON(&st, "cores")
		return st.Stats
	}
	time.Sleep(500 * time.Millisecond)
	before := d.RSSKB()

	conns := make([]net.Conn, 2*half)
	var wg sync.WaitGroup
	errs := make(chan error, 2*half)
	sem := make(chan struct{}, 64)
	for i := range conns {
		port := tcpPort
		if i >= half {
			port = tlsPort
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
			if err != nil {
				errs <- err
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	close(errs)
	for err := range errs {
		t.Fatalf("connecting: %v", err)
	}
	opened := time.Now()
	time.Sleep(200 * time.Millisecond) // the daemon accepts the backlog
	after := d.RSSKB()
	perConn := float64(after-before) * 1024 / (2 * half)
	t.Logf("RSS %d kB before, %d kB with %d half-open connections: %.0f bytes each", before, after, 2*half, perConn)
	if perConn > 64<<10 {
		t.Errorf("%.0f bytes per half-open connection, want at most 64 KiB", perConn)
	}

	// A call over TLS meanwhile.
	roots := x509.NewCertPool()
	roots.AddCert(set.CA.Cert)
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", fmt.Sprintf("127.0.0.1:%d", tlsPort),
		&tls.Config{RootCAs: roots, ServerName: "sip.example.net", MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("a TLS caller beside the half-open connections: %v", err)
	}
	defer c.Close()
	la := c.LocalAddr().String()
	invite := fmt.Sprintf("INVITE sip:svc@127.0.0.1:%d;transport=tls SIP/2.0\r\n"+
		"Via: SIP/2.0/TLS %s;branch=z9hG4bK-halfopen;rport\r\nFrom: <sip:caller@%s>;tag=f1\r\nTo: <sip:svc@127.0.0.1>\r\n"+
		"Call-ID: halfopen\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@%s;transport=tls>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		tlsPort, la, la, la)
	c.Write([]byte(invite))
	core.SetReadDeadline(time.Now().Add(5 * time.Second))
	var req *sip.Request
	buf := make([]byte, 65535)
	for req == nil {
		n, _, err := core.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("the INVITE over TLS did not reach the Core: %v", err)
		}
		if m, err := sip.ParseMessage(buf[:n]); err == nil {
			if r, ok := m.(*sip.Request); ok && r.Method == sip.INVITE {
				req = r
			}
		}
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	res.To().Params.Add("tag", "c1")
	core.WriteToUDP([]byte(res.String()), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: udp})
	r := bufio.NewReader(c)
	for {
		m := streamRecv(t, c, r, 5*time.Second)
		if m == nil {
			t.Fatal("no 200 over TLS while 10,000 connections were half-open")
		}
		if res, ok := m.(*sip.Response); ok && res.StatusCode == 200 {
			break
		}
	}
	if took := time.Since(opened); took > 2*time.Second {
		t.Logf("the call took until %v after the connections opened (their timeout is 2s)", took)
	}

	daemontest.WaitFor(t, 60*time.Second, "every half-open connection closed and counted", func() bool {
		st := stats()
		return st["tcp_closed_silent"] >= half && st["tls_handshakes_timeout"] >= half
	})
	st := stats()
	t.Logf("closed: silent %d, handshake %d (tls timeouts %d)", st["tcp_closed_silent"], st["tcp_closed_handshake"], st["tls_handshakes_timeout"])
}

// TestTLSReloadKeepsConnections: SIGHUP makes the daemon read its
// certificate files again: a connection made before goes on (an OPTIONS
// on it is answered), a new one is served the new certificate.
func TestTLSReloadKeepsConnections(t *testing.T) {
	set := tlstest.NewSet(t, "sip.example.net", "127.0.0.1")
	udp, tlsPort := testenv.FreePort(t), testenv.FreePort(t)
	certFile, keyFile := tlstest.WriteFile(t, "sip.crt", nil), tlstest.WriteFile(t, "sip.key", nil)
	install := func(p tlstest.Pair) {
		for _, f := range [][2]string{{p.Cert, certFile}, {p.Key, keyFile}} {
			data, err := os.ReadFile(f[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(f[1], data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	install(set.Server)
	d := daemontest.New(t)
	d.WriteConfig(fmt.Sprintf(`node: {name: tlsreload, profile: single, data_dir: %q}
log: {level: info, format: text}
web: {listen: ""}
sip:
  listen: ["udp:127.0.0.1:%d", "tls:127.0.0.1:%d"]
  core_port: -1
  tls: {certificates: [{cert: %q, key: %q}]}
  cores: [{name: core1, address: "127.0.0.1:9"}]
`, d.DataDir(), udp, tlsPort, certFile, keyFile))
	d.Start()
	roots := x509.NewCertPool()
	roots.AddCert(set.CA.Cert)
	dial := func() *tls.Conn {
		t.Helper()
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", fmt.Sprintf("127.0.0.1:%d", tlsPort),
			&tls.Config{RootCAs: roots, ServerName: "sip.example.net", MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	options := func(c *tls.Conn, id string) {
		t.Helper()
		la := c.LocalAddr().String()
		fmt.Fprintf(c, "OPTIONS sip:127.0.0.1:%d;transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS %s;branch=z9hG4bK-%s;rport\r\n"+
			"From: <sip:a@example.net>;tag=%s\r\nTo: <sip:127.0.0.1>\r\nCall-ID: %s\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
			tlsPort, la, id, id, id)
		m := streamRecv(t, c, bufio.NewReader(c), 5*time.Second)
		if res, ok := m.(*sip.Response); !ok || res.StatusCode != 200 {
			t.Fatalf("OPTIONS %s: answered %v, want 200", id, m)
		}
	}
	old := dial()
	defer old.Close()
	options(old, "before")
	first := old.ConnectionState().PeerCertificates[0].SerialNumber

	fresh := set.CA.Server(t, "sip.example.net", "127.0.0.1")
	install(fresh)
	d.Signal(syscall.SIGHUP)
	daemontest.WaitFor(t, 10*time.Second, "a new connection served the new certificate", func() bool {
		c := dial()
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.Cmp(fresh.Leaf.SerialNumber) == 0
	})
	if first.Cmp(fresh.Leaf.SerialNumber) == 0 {
		t.Fatal("the test's two certificates have one serial")
	}
	options(old, "after") // the connection made before the reload goes on
}
