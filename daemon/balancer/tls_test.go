package balancer

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/sipedge/sipedge/daemon/tlsconf"
	"github.com/sipedge/sipedge/daemon/tlsconf/tlstest"
	"github.com/sipedge/sipedge/hal/testenv"
)

// trustedName is the client certificate name security.trusted lists in
// these tests.
const trustedName = tlstest.ClientName

// tlsLab is the txLab with a tls: (and a tcp:) listener: certificates of
// a test CA, clients verified when they present one, the name
// trustedName trusted.
type tlsLab struct {
	*txLab
	set     tlstest.Set
	tlsAddr string
	tcpAddr string
}

func newTLSLab(t *testing.T, n int, mod func(*Options)) *tlsLab {
	t.Helper()
	set := tlstest.NewSet(t, "sip.example.net", "127.0.0.1")
	store, err := tlsconf.NewStore(tlsconf.ServerOptions{
		Certificates: []tlsconf.CertFile{{Cert: set.Server.Cert, Key: set.Server.Key}},
		ClientCA:     set.CA.File, Verify: tlsconf.VerifyOptional})
	if err != nil {
		t.Fatal(err)
	}
	client, err := tlsconf.NewClient(tlsconf.ClientOptions{CA: set.CA.File})
	if err != nil {
		t.Fatal(err)
	}
	tl := &tlsLab{set: set}
	tl.tlsAddr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	tl.tcpAddr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	tl.txLab = newTxLab(t, n, func(o *Options) {
		o.Listen = append(o.Listen, "tls:"+tl.tlsAddr, "tcp:"+tl.tcpAddr)
		o.TLS = TLSOptions{Server: store.ServerConfig(), Client: client.Config,
			Trusted: func(names []string) bool { return slices.Contains(names, trustedName) }}
		if mod != nil {
			mod(o)
		}
	})
	return tl
}

// dial opens a TLS connection to the lab's tls: listener from local (""
// any), presenting cert when given.
func (tl *tlsLab) dial(local string, cert *tlstest.Pair) (*tls.Conn, error) {
	roots := x509.NewCertPool()
	roots.AddCert(tl.set.CA.Cert)
	cfg := &tls.Config{RootCAs: roots, ServerName: "sip.example.net", MinVersion: tls.VersionTLS12}
	if cert != nil {
		kp, err := tls.LoadX509KeyPair(cert.Cert, cert.Key)
		if err != nil {
			return nil, err
		}
		// Sent whatever CAs the server names (Go's client would leave
		// out a certificate of another CA).
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &kp, nil }
	}
	d := &net.Dialer{Timeout: 2 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	return tls.DialWithDialer(d, "tcp", tl.tlsAddr, cfg)
}

// streamRecv reads the next message from a stream, nil after d.
func streamRecv(t *testing.T, c net.Conn, r *bufio.Reader, d time.Duration) sip.Message {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	data, err := readStreamMessage(r, 65535, nil)
	if err != nil {
		return nil
	}
	m, err := sip.ParseMessage(data)
	if err != nil {
		t.Fatalf("unparsable message on the stream: %v\n%s", err, data)
	}
	return m
}

// tlsInvite is an INVITE from a caller on a TLS connection c.
func (tl *tlsLab) tlsInvite(c net.Conn, id string) string {
	la := c.LocalAddr().String()
	return "INVITE sip:svc@" + tl.tlsAddr + ";transport=tls SIP/2.0\r\n" +
		"Via: SIP/2.0/TLS " + la + ";branch=z9hG4bK-" + id + ";rport\r\n" +
		"From: <sip:caller@" + la + ">;tag=f-" + id + "\r\n" +
		"To: <sip:svc@" + tl.tlsAddr + ">\r\n" +
		"Call-ID: " + id + "\r\n" +
		"CSeq: 1 INVITE\r\n" +
		"Contact: <sip:caller@" + la + ";transport=tls>\r\n" +
		"Max-Forwards: 70\r\n" +
		"Content-Length: 0\r\n\r\n"
}

// callOverTLS sends an INVITE over c, answers it 200 at the UDP Core
// that gets it and returns the Core's request once the caller has the
// 200.
func (tl *tlsLab) callOverTLS(t *testing.T, c *tls.Conn, id string) *sip.Request {
	t.Helper()
	if _, err := c.Write([]byte(tl.tlsInvite(c, id))); err != nil {
		t.Fatal(err)
	}
	i, req := tl.coreRecv(3*time.Second, "INVITE "+id, func(m sip.Message) bool {
		r, ok := m.(*sip.Request)
		return ok && r.Method == sip.INVITE && r.CallID().Value() == id
	})
	tl.send(tl.cores[i], reply(req, 200, "OK", "t-"+id, tl.cores[i]))
	r := bufio.NewReader(c)
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
		m := streamRecv(t, c, r, time.Until(deadline))
		if res, ok := m.(*sip.Response); ok && res.StatusCode == 200 {
			return req
		}
	}
	t.Fatalf("no 200 for %s over TLS", id)
	return nil
}

// TestTLSCallToUDPCore: a call over TLS reaches a UDP Core with two
// Record-Routes (RFC 5658: the Core's side, UDP, on top of the caller's,
// TLS with transport=tls) and its 200 comes back on the caller's
// connection.
func TestTLSCallToUDPCore(t *testing.T) {
	tl := newTLSLab(t, 1, nil)
	c, err := tl.dial("", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := tl.callOverTLS(t, c, "tls-call")
	var rrs []string
	for _, h := range req.GetHeaders("Record-Route") {
		rrs = append(rrs, h.Value())
	}
	want := []string{fmt.Sprintf("<sip:%s;lr>", tl.addr), "<sip:" + tl.tlsAddr + ";transport=tls;lr>"}
	if strings.Join(rrs, ",") != strings.Join(want, ",") {
		t.Errorf("Record-Route %q, want %q", rrs, want)
	}
	if via := req.Via(); via == nil || !strings.EqualFold(via.Transport, "UDP") {
		t.Errorf("our Via toward the UDP Core: %v", via)
	}
	if n := tl.b.stats.TLSHandshakes[tlsOK].Load(); n != 1 {
		t.Errorf("tls_handshakes ok %d, want 1", n)
	}
}

// TestTLSBadInput: clients that open and never finish the handshake,
// TCP clients that connect and never send, a certificate from a CA the
// box does not know and a message cut in the middle by a disconnect are
// each closed and counted (a bounded time and memory each), while a call
// on another connection goes through.
func TestTLSBadInput(t *testing.T) {
	const n = 200
	tl := newTLSLab(t, 1, func(o *Options) {
		o.TLS.HandshakeTimeout = 500 * time.Millisecond
		o.TCPMessageTimeout = 500 * time.Millisecond
		o.TCPMaxPerSource = 2 * n
	})
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := range 2 * n {
		addr := tl.tlsAddr // opens TCP, never says hello
		if i >= n {
			addr = tl.tcpAddr // opens TCP, never sends a message
		}
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// A certificate the box's client CA did not sign: refused.
	if c, err := tl.dial("", &tl.set.Foreign); err == nil {
		// TLS 1.3 reports the client's failure on the first read.
		c.Write([]byte("\r\n\r\n"))
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = c.Read(make([]byte, 1))
		c.Close()
		if err == nil {
			t.Error("a client certificate of an unknown CA was accepted")
		}
	}
	// Half a message, then the connection drops.
	if c, err := tl.dial("", nil); err == nil {
		c.Write([]byte(tl.tlsInvite(c, "cut")[:80]))
		c.Close()
	} else {
		t.Fatal(err)
	}
	// Meanwhile a call on a good connection.
	c, err := tl.dial("", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tl.callOverTLS(t, c, "tls-good")

	st := &tl.b.stats
	want := func(what string, get func() uint64, min uint64) {
		t.Helper()
		var got uint64
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if got = get(); got >= min {
				return
			}
		}
		t.Errorf("%s: %d, want at least %d", what, got, min)
	}
	want("tls handshakes timed out", st.TLSHandshakes[tlsTimeout].Load, n)
	want("tcp connections closed silent", st.TCPClosed[tcpClosedSilent].Load, n)
	want("tls handshakes failing verification", st.TLSHandshakes[tlsVerify].Load, 1)
	want("connections closed in the middle of a message", st.TCPClosed[tcpClosedCut].Load, 1)
	if in, _ := tl.b.TCPConnections(); in != 1 {
		t.Errorf("%d inbound connections left open, want 1 (the good one)", in)
	}
}

// TestTLSIdentityTrusted: a client certificate whose name
// security.trusted lists makes its connection trusted whatever its
// address; without it the same source is a stranger, whose pre-routed
// request is refused (403) where a trusted one's goes to its Route.
func TestTLSIdentityTrusted(t *testing.T) {
	tl := newTLSLab(t, 1, nil)
	hop := tl.socket() // the next hop the request's Route names
	client := tl.set.Client
	for _, tc := range []struct {
		name    string
		cert    *tlstest.Pair
		forward bool
	}{{"no certificate", nil, false}, {"trusted name", &client, true}} {
		c, err := tl.dial("127.0.0.2", tc.cert) // not loopback's 127.0.0.1: untrusted by address
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		la := c.LocalAddr().String()
		msg := "OPTIONS sip:x@" + hop.LocalAddr().String() + " SIP/2.0\r\n" +
			"Via: SIP/2.0/TLS " + la + ";branch=z9hG4bK-id" + strings.ReplaceAll(tc.name, " ", "") + ";rport\r\n" +
			"Route: <sip:" + hop.LocalAddr().String() + ";lr>\r\n" +
			"From: <sip:a@example.net>;tag=1\r\nTo: <sip:x@example.net>\r\n" +
			"Call-ID: trust-" + strings.ReplaceAll(tc.name, " ", "") + "\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
		c.Write([]byte(msg))
		callID := "trust-" + strings.ReplaceAll(tc.name, " ", "")
		ours := func(m sip.Message) bool {
			r, ok := m.(*sip.Request)
			return ok && r.CallID().Value() == callID
		}
		got, _ := tl.next(hop, time.Second, ours)
		if (got != nil) != tc.forward {
			t.Errorf("%s: forwarded %v, want %v", tc.name, got != nil, tc.forward)
		}
		if !tc.forward {
			m := streamRecv(t, c, bufio.NewReader(c), 2*time.Second)
			if res, ok := m.(*sip.Response); !ok || res.StatusCode != 403 {
				t.Errorf("%s: answered %v, want 403", tc.name, m)
			}
		}
		c.Close()
	}
}

// tlsCore is a Core over TLS of the test: it answers every request 200
// on the connection it came on, and records the methods.
type tlsCore struct {
	l       net.Listener
	methods chan string
}

func newTLSCore(t *testing.T, pair tlstest.Pair) *tlsCore {
	t.Helper()
	kp, err := tls.LoadX509KeyPair(pair.Cert, pair.Key)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	tc := &tlsCore{l: l, methods: make(chan string, 100)}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					data, err := readStreamMessage(r, 65535, nil)
					if err != nil {
						return
					}
					m, err := sip.ParseMessage(data)
					req, ok := m.(*sip.Request)
					if err != nil || !ok {
						continue
					}
					select {
					case tc.methods <- string(req.Method):
					default:
					}
					res := sip.NewResponseFromRequest(req, 200, "OK", nil)
					if req.Method == sip.INVITE {
						res.To().Params.Add("tag", "core")
					}
					c.Write([]byte(res.String()))
				}
			}()
		}
	}()
	return tc
}

// TestTLSToCore: a tls: Core is dialled over TLS and verified for its
// tls_name; probes and calls go over the one connection. A Core whose
// certificate does not carry its tls_name is never sent anything, over
// TLS or any other transport.
func TestTLSToCore(t *testing.T) {
	set := tlstest.NewSet(t, "core.example.net")
	good := newTLSCore(t, set.Server)
	bad := newTLSCore(t, set.Server)
	tl := newTLSLab(t, 0, func(o *Options) {
		client, err := tlsconf.NewClient(tlsconf.ClientOptions{CA: set.CA.File})
		if err != nil {
			t.Fatal(err)
		}
		o.TLS.Client = client.Config
		o.Cores = []CoreConfig{{Name: "tls1", Address: "tls:" + good.l.Addr().String(), TLSName: "core.example.net"}}
		o.Probe = ProbeOptions{Interval: 200 * time.Millisecond, Timeout: time.Second, DownAfter: 2, UpAfter: 1}
	})
	seen := func(core *tlsCore, method string, d time.Duration) bool {
		for deadline := time.After(d); ; {
			select {
			case m := <-core.methods:
				if m == method {
					return true
				}
			case <-deadline:
				return false
			}
		}
	}
	if !seen(good, "OPTIONS", 3*time.Second) {
		t.Fatal("no probe over TLS at the tls: Core")
	}
	tl.send(tl.caller, tl.invite("to-tls"))
	if !seen(good, "INVITE", 3*time.Second) {
		t.Fatal("the INVITE did not reach the tls: Core")
	}
	tl.recv(tl.caller, 3*time.Second, "200 from the tls: Core", isResponse(200))
	if _, out := tl.b.TCPConnections(); out != 1 {
		t.Errorf("%d connections to Cores, want the one, reused", out)
	}

	if err := tl.b.AddCore(CoreConfig{Name: "wrong", Address: "tls:" + bad.l.Addr().String(), TLSName: "other.example.net"}); err != nil {
		t.Fatal(err)
	}
	if err := tl.b.DisableCore("tls1"); err != nil {
		t.Fatal(err)
	}
	tl.send(tl.caller, tl.invite("to-wrong"))
	if seen(bad, "INVITE", 2*time.Second) {
		t.Fatal("a Core whose certificate is not for its tls_name got the INVITE")
	}
	if n := tl.b.stats.TLSHandshakes[tlsVerify].Load(); n == 0 {
		t.Error("no handshake counted as failing verification")
	}
}

// TestSIPSNeedsTLSCore: a sips: request goes over TLS on every hop (RFC
// 3261 26.2.2): with only UDP Cores the box cannot take it and says so
// (416), where the same request as sip: reaches a Core.
func TestSIPSNeedsTLSCore(t *testing.T) {
	tl := newTLSLab(t, 1, nil)
	c, err := tl.dial("", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	inv := strings.Replace(tl.tlsInvite(c, "sips-1"), "INVITE sip:svc@", "INVITE sips:svc@", 1)
	c.Write([]byte(inv))
	r := bufio.NewReader(c)
	for {
		m := streamRecv(t, c, r, 3*time.Second)
		if m == nil {
			t.Fatal("no final response to a sips: INVITE with only UDP Cores")
		}
		if res, ok := m.(*sip.Response); ok && res.StatusCode >= 200 {
			if res.StatusCode != 416 {
				t.Fatalf("answered %d, want 416", res.StatusCode)
			}
			break
		}
	}
	if m, _ := tl.next(tl.cores[0], 300*time.Millisecond, isRequest(sip.INVITE)); m != nil {
		t.Fatal("a sips: INVITE was sent to a UDP Core")
	}
	tl.callOverTLS(t, c, "sips-2") // the same as sip: goes through
}
