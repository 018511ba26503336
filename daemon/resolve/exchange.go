package resolve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// query asks the servers in order for name's records of type qtype and
// returns the first usable answer: NOERROR (records or none) or
// NXDOMAIN. A server that times out, refuses, fails (SERVFAIL) or sends
// an answer to another question is passed over for the next one.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	if len(r.servers) == 0 {
		return nil, ErrNoServers
	}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	q.RecursionDesired = true
	q.SetEdns0(r.udpSize, false)
	var errs []error
	for _, s := range r.servers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m, err := r.ask(ctx, s, q)
		if err == nil {
			return m, nil
		}
		r.log.Debug("resolve: server failed", "server", s, "name", name, "type", dns.TypeToString[qtype], "err", err)
		errs = append(errs, fmt.Errorf("%s: %w", s, err))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%w (%w)", ErrServerFailure, errors.Join(errs...))
}

// ask puts q to one server over UDP, and again over TCP when the UDP
// answer is truncated, each bounded by the Resolver's timeout.
func (r *Resolver) ask(ctx context.Context, s netip.AddrPort, q *dns.Msg) (*dns.Msg, error) {
	m, err := r.exchange(ctx, "udp", s, q)
	if err != nil {
		return nil, err
	}
	if m.Truncated {
		r.log.Debug("resolve: truncated answer, asking over TCP", "server", s, "name", q.Question[0].Name)
		if m, err = r.exchange(ctx, "tcp", s, q); err != nil {
			return nil, fmt.Errorf("after a truncated UDP answer: %w", err)
		}
		if m.Truncated {
			return nil, errors.New("truncated answer over TCP")
		}
	}
	if err := check(q, m); err != nil {
		return nil, err
	}
	return m, nil
}

// exchange is one query over one transport. The connection is closed
// when ctx ends, so that a Watcher stops at once.
func (r *Resolver) exchange(ctx context.Context, network string, s netip.AddrPort, q *dns.Msg) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	c := &dns.Client{Net: network, Timeout: r.timeout, UDPSize: r.udpSize}
	conn, err := c.DialContext(ctx, serverAddr(s))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", network, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	// A fresh ID for each exchange.
	q = q.Copy()
	q.Id = dns.Id()
	m, _, err := c.ExchangeWithConnContext(ctx, q, conn)
	if err != nil {
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			return nil, fmt.Errorf("%s: no answer within %s", network, r.timeout)
		}
		return nil, fmt.Errorf("%s: %w", network, err)
	}
	return m, nil
}

// check accepts an answer to q with a final rcode (NOERROR, NXDOMAIN).
func check(q, m *dns.Msg) error {
	if !m.Response {
		return errors.New("not a response")
	}
	if len(m.Question) != 1 || !strings.EqualFold(m.Question[0].Name, q.Question[0].Name) ||
		m.Question[0].Qtype != q.Question[0].Qtype || m.Question[0].Qclass != dns.ClassINET {
		return errors.New("answer to another question")
	}
	switch m.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
		return nil
	}
	return fmt.Errorf("rcode %s", dns.RcodeToString[m.Rcode])
}
