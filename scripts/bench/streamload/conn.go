package streamload

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Target is where and how to connect.
type Target struct {
	// Network is "tcp" or "tls".
	Network string
	// Addr is the proxy's IP:port.
	Addr string
	// TLS is the client configuration for "tls" (see ClientTLS). Nil:
	// verify against the system roots, server name from Addr.
	TLS *tls.Config
	// Sources are local addresses to connect from, used in turn (e.g.
	// 127.0.0.2.. on loopback, see Sources); empty: the kernel's choice.
	Sources []netip.Addr
	// DialTimeout bounds the TCP connect and the TLS handshake (default 5 s).
	DialTimeout time.Duration
}

func (t Target) transport() string {
	if t.Network == "tls" {
		return "TLS"
	}
	return "TCP"
}

func (t Target) check() error {
	if t.Network != "tcp" && t.Network != "tls" {
		return fmt.Errorf("network %q: want tcp or tls", t.Network)
	}
	if _, err := netip.ParseAddrPort(t.Addr); err != nil {
		return fmt.Errorf("addr %q: %w", t.Addr, err)
	}
	return nil
}

// ClientTLS is a client configuration: certificates verified against the
// PEM CA file when given (else the system roots), unless insecure;
// serverName overrides the name checked (default: the host of Addr).
func ClientTLS(caFile, serverName string, insecure bool) (*tls.Config, error) {
	c := &tls.Config{ServerName: serverName, InsecureSkipVerify: insecure}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate", caFile)
		}
		c.RootCAs = pool
	}
	return c, nil
}

// Sources returns n consecutive addresses from first (127.0.0.2, 3, ...).
func Sources(first netip.Addr, n int) []netip.Addr {
	out := make([]netip.Addr, 0, n)
	for a := first; len(out) < n && a.IsValid(); a = a.Next() {
		out = append(out, a)
	}
	return out
}

// ParseSources reads "A", "A-B" (an inclusive range) or "A+N" (N
// addresses from A), comma-separated.
func ParseSources(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if a, b, ok := strings.Cut(part, "-"); ok {
			lo, err1 := netip.ParseAddr(a)
			hi, err2 := netip.ParseAddr(b)
			if err1 != nil || err2 != nil || hi.Less(lo) {
				return nil, fmt.Errorf("bad source range %q", part)
			}
			for x := lo; x.IsValid() && !hi.Less(x); x = x.Next() {
				out = append(out, x)
			}
			continue
		}
		if a, n, ok := strings.Cut(part, "+"); ok {
			lo, err1 := netip.ParseAddr(a)
			k, err2 := strconv.Atoi(n)
			if err1 != nil || err2 != nil || k < 1 {
				return nil, fmt.Errorf("bad source count %q", part)
			}
			out = append(out, Sources(lo, k)...)
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return nil, fmt.Errorf("bad source %q", part)
		}
		out = append(out, a)
	}
	return out, nil
}

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT (Linux 4.2): bind the
// source address but choose the port at connect, per destination, so
// that one source address is not held to one global port range.
const ipBindAddressNoPort = 24

// dial opens one connection (from the i-th source) and, for tls,
// completes the handshake. hs is the handshake's duration (0 for tcp).
func (t Target) dial(ctx context.Context, i int) (c net.Conn, hs time.Duration, err error) {
	timeout := t.DialTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := net.Dialer{}
	if len(t.Sources) > 0 {
		src := t.Sources[i%len(t.Sources)]
		d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			rc.Control(func(fd uintptr) {
				syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
			})
			return nil
		}
	}
	c, err = d.DialContext(ctx, "tcp", t.Addr)
	if err != nil {
		return nil, 0, err
	}
	if t.Network != "tls" {
		return c, 0, nil
	}
	cfg := &tls.Config{}
	if t.TLS != nil {
		cfg = t.TLS.Clone()
	}
	if cfg.ServerName == "" {
		host, _, _ := net.SplitHostPort(t.Addr)
		cfg.ServerName = host
	}
	tc := tls.Client(c, cfg)
	start := time.Now()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, 0, fmt.Errorf("tls handshake: %w", err)
	}
	return tc, time.Since(start), nil
}

// maxMessage bounds one received message (headers and body).
const maxMessage = 65535

var errTooLarge = errors.New("message too large")

// readMessage reads one SIP message from a stream: CRLFs between
// messages (keepalives, RFC 5626) are skipped, then headers to the blank
// line, then Content-Length bytes of body. It returns the raw bytes.
func readMessage(r *bufio.Reader) ([]byte, error) {
	for {
		b, err := r.Peek(1)
		if err != nil {
			return nil, err
		}
		if b[0] != '\r' && b[0] != '\n' {
			break
		}
		r.Discard(1)
	}
	var msg []byte
	clen := 0
	for {
		line, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			return nil, errTooLarge
		}
		if err != nil {
			return nil, err
		}
		msg = append(msg, line...)
		if len(msg) > maxMessage {
			return nil, errTooLarge
		}
		l := bytes.TrimRight(line, "\r\n")
		if len(l) == 0 {
			break
		}
		if name, val, ok := bytes.Cut(l, []byte(":")); ok {
			name = bytes.TrimSpace(name)
			if bytes.EqualFold(name, []byte("Content-Length")) || bytes.EqualFold(name, []byte("l")) {
				n, err := strconv.Atoi(string(bytes.TrimSpace(val)))
				if err != nil || n < 0 || n > maxMessage {
					return nil, fmt.Errorf("bad Content-Length %q", val)
				}
				clen = n
			}
		}
	}
	if clen > 0 {
		if len(msg)+clen > maxMessage {
			return nil, errTooLarge
		}
		body := make([]byte, clen)
		if _, err := ioReadFull(r, body); err != nil {
			return nil, err
		}
		msg = append(msg, body...)
	}
	return msg, nil
}

func ioReadFull(r *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// response is what the generator needs of a received response.
type response struct {
	status int
	callID string
	cseq   uint32
	method string
	toTag  string
	// contact is the Contact URI (2xx to INVITE), routes the route set
	// (Record-Route in reverse, as a UAC uses it).
	contact string
	routes  []string
}

// parseResponse parses raw with sipgo; a request is an error.
func parseResponse(raw []byte) (*response, error) {
	m, err := sip.ParseMessage(raw)
	if err != nil {
		return nil, err
	}
	res, ok := m.(*sip.Response)
	if !ok {
		return nil, fmt.Errorf("a request, not a response")
	}
	out := &response{status: res.StatusCode}
	if h := res.CallID(); h != nil {
		out.callID = h.Value()
	}
	if h := res.CSeq(); h != nil {
		out.cseq, out.method = h.SeqNo, string(h.MethodName)
	}
	if out.callID == "" || out.method == "" {
		return nil, fmt.Errorf("response without Call-ID or CSeq")
	}
	if h := res.To(); h != nil {
		out.toTag, _ = h.Params.Get("tag")
	}
	if out.method == "INVITE" && out.status >= 200 && out.status < 300 {
		if h := res.Contact(); h != nil {
			out.contact = h.Address.String()
		}
		rr := res.GetHeaders("Record-Route")
		for i := len(rr) - 1; i >= 0; i-- {
			out.routes = append(out.routes, rr[i].Value())
		}
	}
	return out, nil
}

// conn is one connection with a lock-protected writer.
type conn struct {
	c      net.Conn
	local  string // IP:port as written in Via and Contact
	wmu    sync.Mutex
	closed atomic.Bool
}

func newConn(c net.Conn) *conn {
	return &conn{c: c, local: c.LocalAddr().String()}
}

func (c *conn) write(b []byte, timeout time.Duration) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.c.SetWriteDeadline(time.Now().Add(timeout))
	_, err := c.c.Write(b)
	return err
}

func (c *conn) close() {
	c.closed.Store(true)
	c.c.Close()
}

// request writes a request from the template: method, R-URI, Via on the
// connection with branch, From with tag, To (with tag when in dialog),
// Call-ID, CSeq, Route set, Contact (INVITE), Max-Forwards,
// Content-Length: 0.
type request struct {
	method, ruri, toURI  string
	branch, fromTag, tag string
	callID               string
	cseq                 uint32
	routes               []string
}

func (c *conn) build(transport string, r request) []byte {
	b := make([]byte, 0, 512)
	b = append(b, r.method...)
	b = append(b, ' ')
	b = append(b, r.ruri...)
	b = append(b, " SIP/2.0\r\nVia: SIP/2.0/"...)
	b = append(b, transport...)
	b = append(b, ' ')
	b = append(b, c.local...)
	b = append(b, ";rport;branch=z9hG4bK"...)
	b = append(b, r.branch...)
	b = append(b, "\r\nFrom: <sip:load@"...)
	b = append(b, c.local...)
	b = append(b, ">;tag="...)
	b = append(b, r.fromTag...)
	b = append(b, "\r\nTo: <"...)
	b = append(b, r.toURI...)
	b = append(b, '>')
	if r.tag != "" {
		b = append(b, ";tag="...)
		b = append(b, r.tag...)
	}
	b = append(b, "\r\nCall-ID: "...)
	b = append(b, r.callID...)
	b = append(b, "\r\nCSeq: "...)
	b = strconv.AppendUint(b, uint64(r.cseq), 10)
	b = append(b, ' ')
	b = append(b, r.method...)
	for _, rt := range r.routes {
		b = append(b, "\r\nRoute: "...)
		b = append(b, rt...)
	}
	if r.method == "INVITE" || r.method == "OPTIONS" {
		b = append(b, "\r\nContact: <sip:load@"...)
		b = append(b, c.local...)
		b = append(b, ";transport="...)
		b = append(b, strings.ToLower(transport)...)
		b = append(b, '>')
	}
	b = append(b, "\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"...)
	return b
}

// ids makes unique Call-IDs, tags and branches for one run.
type ids struct {
	prefix string
	n      atomic.Uint64
}

func newIDs() *ids {
	return &ids{prefix: strconv.FormatInt(time.Now().UnixNano()%1e12, 36) + "-" + strconv.Itoa(os.Getpid())}
}

func (g *ids) next() string {
	return g.prefix + "-" + strconv.FormatUint(g.n.Add(1), 36)
}
