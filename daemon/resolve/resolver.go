package resolve

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/miekg/dns"
)

// Defaults of Options.
const (
	DefaultResolvConf = "/etc/resolv.conf"
	DefaultTimeout    = 2 * time.Second
	// DefaultUDPSize is the EDNS0 payload size advertised (the DNS flag
	// day 2020 value: no IP fragmentation); a larger answer comes back
	// truncated and is asked again over TCP.
	DefaultUDPSize = 1232
)

// Bounds on what one Lookup uses from its answers.
const (
	maxSRV          = 16 // SRV records used, best priority/weight first
	maxAddrsPerHost = 16 // A plus AAAA addresses per host
	maxTargets      = 64 // targets in one Result
	maxCNAMEs       = 8  // CNAME chain followed inside one answer
)

// Options configure a Resolver.
type Options struct {
	// Servers are the DNS servers, asked in order (the next one when a
	// server times out or fails). Empty: the nameservers of ResolvConf.
	Servers []netip.AddrPort
	// ResolvConf is read when Servers is empty (default /etc/resolv.conf).
	ResolvConf string
	// Timeout bounds one query to one server (default 2s); a truncated
	// UDP answer gets another Timeout for its TCP retry.
	Timeout time.Duration
	// UDPSize is the EDNS0 UDP payload size (default 1232, at least 512).
	UDPSize uint16
	// Log receives debug lines about queries (default slog.Default()).
	Log *slog.Logger
}

// Resolver asks a fixed list of DNS servers. It is safe for concurrent
// use.
type Resolver struct {
	servers []netip.AddrPort
	timeout time.Duration
	udpSize uint16
	log     *slog.Logger
}

// New returns a Resolver. With no Servers it reads the nameservers of
// o.ResolvConf; finding none there is an error (ErrNoServers).
func New(o Options) (*Resolver, error) {
	r := &Resolver{servers: o.Servers, timeout: o.Timeout, udpSize: o.UDPSize, log: o.Log}
	if r.timeout <= 0 {
		r.timeout = DefaultTimeout
	}
	if r.udpSize == 0 {
		r.udpSize = DefaultUDPSize
	}
	if r.udpSize < dns.MinMsgSize {
		return nil, fmt.Errorf("resolve: UDP size %d is below %d", r.udpSize, dns.MinMsgSize)
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if len(r.servers) == 0 {
		path := o.ResolvConf
		if path == "" {
			path = DefaultResolvConf
		}
		s, err := ServersFromFile(path)
		if err != nil {
			return nil, fmt.Errorf("resolve: %w: none given and %w", ErrNoServers, err)
		}
		r.servers = s
	}
	for _, s := range r.servers {
		if !s.IsValid() || s.Port() == 0 {
			return nil, fmt.Errorf("resolve: server %q: want IP:port with a port", s)
		}
	}
	return r, nil
}

// Servers returns the servers the Resolver asks, in order.
func (r *Resolver) Servers() []netip.AddrPort {
	return append([]netip.AddrPort(nil), r.servers...)
}

// ServersFromFile reads the nameserver lines of a resolv.conf file.
func ServersFromFile(path string) ([]netip.AddrPort, error) {
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	port := uint16(53)
	if cc.Port != "" {
		p, err := strconv.ParseUint(cc.Port, 10, 16)
		if err != nil || p == 0 {
			return nil, fmt.Errorf("%s: bad port %q", path, cc.Port)
		}
		port = uint16(p)
	}
	var out []netip.AddrPort
	for _, s := range cc.Servers {
		a, err := netip.ParseAddr(s)
		if err != nil {
			continue // not an IP literal: never resolved
		}
		out = append(out, netip.AddrPortFrom(a, port))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s has no nameserver lines with an IP address", path)
	}
	return out, nil
}

// serverAddr is s as miekg/dns dials it.
func serverAddr(s netip.AddrPort) string {
	return net.JoinHostPort(s.Addr().String(), strconv.Itoa(int(s.Port())))
}
