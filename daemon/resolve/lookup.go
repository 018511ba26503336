package resolve

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Default ports of RFC 3261 when neither the configuration nor SRV gives
// one.
const (
	DefaultPort    = 5060
	DefaultTLSPort = 5061
)

// Lookup finds the targets of a SIP server name for transport ("udp",
// "tcp" or "tls"; empty is udp), as RFC 3263 section 4 without NAPTR:
//
//   - an IP literal ("192.0.2.1", "2001:db8::1", "[2001:db8::1]") is
//     returned as it is, on explicitPort or the default port;
//   - with an explicit port (not 0) SRV is skipped: the A and AAAA
//     records of name on that port;
//   - else the SRV records of _sip._udp.NAME, _sip._tcp.NAME or
//     _sips._tcp.NAME (tls): each target's A and AAAA records become
//     targets with the SRV record's priority, weight and port. A lone
//     target "." means the service is not offered: ErrNoService;
//   - with no SRV records, the A and AAAA records of name on 5060
//     (5061 for tls).
//
// The name must come from the configuration. Never pass a name that
// arrived on the wire (a host of a Request-URI, Route, Via or Contact):
// that would let anyone make the box send DNS queries, and choose where
// it sends calls.
//
// A server failure (timeout, SERVFAIL) on any query fails the Lookup
// rather than return a partial set; a target name with no address is
// left out. Errors wrap ErrNotFound, ErrNoService, ErrServerFailure or
// ErrNoServers.
func (r *Resolver) Lookup(ctx context.Context, name, transport string, explicitPort uint16) (Result, error) {
	tp, err := normTransport(transport)
	if err != nil {
		return Result{}, fmt.Errorf("resolve %q: %w", name, err)
	}
	res := Result{Name: name, Transport: tp}
	port := explicitPort
	if port == 0 {
		port = defaultPort(tp)
	}
	if a, ok := literal(name); ok {
		res.Literal = true
		res.Targets = []Target{{Addr: netip.AddrPortFrom(a, port), Weight: 1, Host: a.String()}}
		return res, nil
	}
	host := strings.TrimSpace(name)
	if _, ok := dns.IsDomainName(host); !ok || host == "" || host == "." {
		return Result{}, fmt.Errorf("resolve %q: not a domain name", name)
	}
	if explicitPort != 0 {
		return r.lookupAddrs(ctx, res, host, port)
	}
	service := srvName(tp, host)
	m, err := r.query(ctx, service, dns.TypeSRV)
	if err != nil {
		return Result{}, fmt.Errorf("resolve %s: SRV %s: %w", name, service, err)
	}
	rrs, srvTTL := records(m, service, dns.TypeSRV)
	if len(rrs) == 0 {
		r.log.Debug("resolve: no SRV records, using A/AAAA", "name", name, "srv", service, "rcode", dns.RcodeToString[m.Rcode])
		return r.lookupAddrs(ctx, res, host, port)
	}
	return r.lookupSRV(ctx, res, service, rrs, srvTTL)
}

// lookupAddrs is res with the A and AAAA records of host on port.
func (r *Resolver) lookupAddrs(ctx context.Context, res Result, host string, port uint16) (Result, error) {
	addrs, ttl, err := r.hostAddrs(ctx, host)
	if err != nil {
		return Result{}, fmt.Errorf("resolve %s: %w", res.Name, err)
	}
	for _, a := range addrs {
		res.Targets = append(res.Targets, Target{Addr: netip.AddrPortFrom(a, port), Weight: 1, Host: hostName(host), TTL: seconds(ttl)})
	}
	res.TTL = seconds(ttl)
	sortTargets(res.Targets)
	return res, nil
}

// lookupSRV is res with the addresses of the SRV records' targets.
func (r *Resolver) lookupSRV(ctx context.Context, res Result, service string, rrs []dns.RR, srvTTL uint32) (Result, error) {
	res.SRV = true
	var srvs []*dns.SRV
	for _, rr := range rrs {
		if s := rr.(*dns.SRV); s.Target != "." {
			srvs = append(srvs, s)
		}
	}
	if len(srvs) == 0 {
		return Result{}, fmt.Errorf("resolve %s: SRV %s: %w", res.Name, service, ErrNoService)
	}
	slices.SortFunc(srvs, func(a, b *dns.SRV) int {
		if c := cmp.Compare(a.Priority, b.Priority); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Weight, a.Weight); c != 0 {
			return c
		}
		return strings.Compare(canonical(a.Target), canonical(b.Target))
	})
	if len(srvs) > maxSRV {
		r.log.Warn("resolve: too many SRV records, using the best", "name", res.Name, "srv", service, "records", len(srvs), "used", maxSRV)
		srvs = srvs[:maxSRV]
	}
	ttl := srvTTL
	for _, s := range srvs {
		if s.Port == 0 {
			r.log.Warn("resolve: SRV record with port 0 left out", "name", res.Name, "srv", service, "target", s.Target)
			continue
		}
		addrs, aTTL, err := r.hostAddrs(ctx, s.Target)
		if errors.Is(err, ErrNotFound) {
			r.log.Warn("resolve: SRV target has no address, left out", "name", res.Name, "srv", service, "target", s.Target, "err", err)
			continue
		}
		if err != nil {
			return Result{}, fmt.Errorf("resolve %s: SRV target %s: %w", res.Name, s.Target, err)
		}
		t := min(s.Hdr.Ttl, aTTL)
		ttl = min(ttl, t)
		for _, a := range addrs {
			if len(res.Targets) == maxTargets {
				r.log.Warn("resolve: too many targets, the rest left out", "name", res.Name, "srv", service, "max", maxTargets)
				break
			}
			res.Targets = append(res.Targets, Target{Addr: netip.AddrPortFrom(a, s.Port), Priority: s.Priority, Weight: s.Weight, Host: hostName(s.Target), TTL: seconds(t)})
		}
	}
	if len(res.Targets) == 0 {
		return Result{}, fmt.Errorf("resolve %s: SRV %s: %w (no target has an address)", res.Name, service, ErrNotFound)
	}
	res.TTL = seconds(ttl)
	sortTargets(res.Targets)
	return res, nil
}

// hostAddrs returns host's A and AAAA addresses and their smallest TTL.
func (r *Resolver) hostAddrs(ctx context.Context, host string) ([]netip.Addr, uint32, error) {
	var addrs []netip.Addr
	var ttls []uint32
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		m, err := r.query(ctx, host, qt)
		if err != nil {
			return nil, 0, fmt.Errorf("%s %s: %w", dns.TypeToString[qt], hostName(host), err)
		}
		if m.Rcode == dns.RcodeNameError {
			break // the name does not exist, for any type
		}
		rrs, ttl := records(m, host, qt)
		n := 0
		for _, rr := range rrs {
			var a netip.Addr
			switch rr := rr.(type) {
			case *dns.A:
				a, _ = netip.AddrFromSlice(rr.A.To4())
			case *dns.AAAA:
				a, _ = netip.AddrFromSlice(rr.AAAA.To16())
			}
			if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() {
				r.log.Warn("resolve: unusable address left out", "host", hostName(host), "record", rr.String())
				continue
			}
			if len(addrs) < maxAddrsPerHost && !slices.Contains(addrs, a) {
				addrs = append(addrs, a)
				n++
			}
		}
		if n > 0 {
			ttls = append(ttls, ttl)
		}
	}
	if len(addrs) == 0 {
		return nil, 0, fmt.Errorf("A/AAAA %s: %w", hostName(host), ErrNotFound)
	}
	return addrs, slices.Min(ttls), nil
}

func seconds(ttl uint32) time.Duration { return time.Duration(ttl) * time.Second }

func normTransport(t string) (string, error) {
	switch t = strings.ToLower(t); t {
	case "":
		return "udp", nil
	case "udp", "tcp", "tls":
		return t, nil
	}
	return "", fmt.Errorf("transport %q is not one of udp, tcp, tls", t)
}

func defaultPort(transport string) uint16 {
	if transport == "tls" {
		return DefaultTLSPort
	}
	return DefaultPort
}

// srvName is the SRV owner of RFC 3263 section 4.2 for a transport.
func srvName(transport, host string) string {
	switch transport {
	case "tcp":
		return "_sip._tcp." + dns.Fqdn(host)
	case "tls":
		return "_sips._tcp." + dns.Fqdn(host)
	}
	return "_sip._udp." + dns.Fqdn(host)
}

// literal reports whether name is an IP address (IPv6 optionally in
// brackets), and which.
func literal(name string) (netip.Addr, bool) {
	s := strings.TrimSpace(name)
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// IsLiteral reports whether name is an IP address rather than a name to
// resolve.
func IsLiteral(name string) bool {
	_, ok := literal(name)
	return ok
}
