package balancer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sipedge/sipedge/daemon/tlsconf"
)

// SIP over TLS (RFC 3261 26.3.1, RFC 5630): a tls: listener is a TCP
// listener whose connections run a TLS handshake first, in the
// connection's own goroutine and within TLS.HandshakeTimeout, so that a
// client that opens and never finishes costs one bounded goroutine for
// that long and holds nothing else up. A client certificate verified
// against the client CA whose names security.trusted lists
// (tls-name:) makes every message on that connection trusted, whatever
// its source address. Toward a tls: Core the balancer dials TLS and
// verifies the Core's certificate for its tls_name (or, for a Core given
// by DNS name, the name looked up: RFC 5922 4.1); connections are kept
// and reused as TCP ones are, and a failure never falls back to another
// transport. Framing, timeouts and caps are the TCP connection's
// (tcpconn.go).

// TLSOptions configures SIP over TLS.
type TLSOptions struct {
	// Server is the configuration of tls: listeners (certificates by
	// SNI, client verification; tlsconf.Store.ServerConfig). Required
	// with one.
	Server *tls.Config
	// HandshakeTimeout bounds a handshake, both ways (default 5s).
	HandshakeTimeout time.Duration
	// Client returns the configuration to dial a tls: Core at addr
	// verifying serverName (tlsconf.Client.Config). Required with a tls:
	// Core.
	Client func(addr, serverName string) (*tls.Config, error)
	// Trusted reports whether a verified client certificate's names make
	// its connection trusted (security.trusted tls-name: entries).
	Trusted func(names []string) bool
}

// TLS handshake results (Stats.TLSHandshakes, sipedge_sip_tls_handshakes_total).
const (
	tlsOK = iota
	tlsTimeout
	tlsVerify
	tlsFailed
	numTLSResults
)

var tlsResults = [numTLSResults]string{"ok", "timeout", "verify", "failed"}

// handshake runs tc's TLS handshake (inbound: as the server) within the
// timeout and replaces its connection with the TLS one; an error says
// why, counted and logged (a line a second per result at most).
func (b *Balancer) handshake(tc *tcpConn, cfg *tls.Config) error {
	timeout := b.opt.TLS.HandshakeTimeout
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tc.c.SetDeadline(time.Now().Add(timeout))
	var tconn *tls.Conn
	if tc.inbound {
		tconn = tls.Server(tc.c, cfg)
	} else {
		tconn = tls.Client(tc.c, cfg)
	}
	err := tconn.HandshakeContext(ctx)
	tc.c.SetDeadline(time.Time{})
	res := tlsOK
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verifyErr *tls.CertificateVerificationError
	switch {
	case err == nil:
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		res = tlsTimeout
	case errors.As(err, &verifyErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr), errors.As(err, &invalid):
		res = tlsVerify
	default:
		res = tlsFailed
	}
	b.stats.TLSHandshakes[res].Add(1)
	if err != nil {
		b.tlsLog.note(b, res, tc, err)
		return fmt.Errorf("tls handshake with %s: %w", tc.key, err)
	}
	tc.c = tconn
	if tc.inbound && b.opt.TLS.Trusted != nil {
		if names := tlsconf.PeerIdentity(tconn.ConnectionState()); len(names) > 0 && b.opt.TLS.Trusted(names) {
			tc.trusted = true
			tc.identity = names[0]
		}
	}
	return nil
}

// serveTLS is an accepted tls: connection's goroutine: the handshake,
// then the reader.
func (b *Balancer) serveTLS(l *listener, tc *tcpConn) {
	if err := b.handshake(tc, b.opt.TLS.Server); err != nil {
		b.stats.TCPClosed[tcpClosedHandshake].Add(1)
		b.dropConn(tc)
		b.wg.Done()
		return
	}
	tc.between(0) // the first message's clock starts now
	b.readTCP(l, tc)
}

// dialTLS returns a TLS connection to a tls: Core at dst over c, verified
// for its name.
func (b *Balancer) dialTLS(c net.Conn, dst netip.AddrPort) (*tcpConn, error) {
	core := b.pool.byAddr(dst)
	if core == nil || core.tlsName == "" || b.opt.TLS.Client == nil {
		c.Close()
		return nil, fmt.Errorf("tls to %s: not a tls: Core (no name to verify its certificate for)", dst)
	}
	cfg, err := b.opt.TLS.Client(dst.String(), core.tlsName)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("tls to %s: %w", dst, err)
	}
	tc := b.newTCPConn(c, dst, false)
	if err := b.handshake(tc, cfg); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}

// tlsLogLimit writes at most one line a second per handshake result, with
// the count of the failures it left out: a flood of bad handshakes must
// not flood the log.
type tlsLogLimit [numTLSResults]everySecond

func (t *tlsLogLimit) note(b *Balancer, res int, tc *tcpConn, err error) {
	ok, skipped := t[res].allow()
	if !ok {
		return
	}
	dir := "from"
	if !tc.inbound {
		dir = "to"
	}
	b.log.Warn("tls handshake failed", "result", tlsResults[res], dir, tc.key, "err", err, "not_logged_since_last", skipped)
}

// secure reports whether st's Request-URI is sips: (RFC 3261 26.2.2):
// it goes to tls: Cores only, never over another transport.
func (b *Balancer) secure(st *serverTx) bool {
	u := st.rq.RequestURI()
	return len(u) >= 5 && strings.EqualFold(string(u[:5]), "sips:")
}

// pickCore chooses the Core for st's next attempt: one not yet tried,
// and a tls: one for a sips: request.
func (b *Balancer) pickCore(st *serverTx) *Core {
	exclude := st.tried
	if b.secure(st) {
		exclude = slices.Clone(exclude)
		for _, c := range b.pool.list() {
			if c.transport != "tls" {
				exclude = append(exclude, c)
			}
		}
	}
	return b.pool.pick(st.callID, exclude)
}
