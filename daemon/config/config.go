// Package config is sipedge's configuration file: its schema, the
// embedded default, loading with line-numbered errors, defaults and
// validation.
//
// One YAML file per box, in the operator's habit from keepalived and
// Kamailio. A bad file fails with every problem listed as
// "file:line: field: what is wrong". State that changes at runtime (Cores
// added or drained, bans, the web password) lives in the store, not here.
package config

import (
	_ "embed"
	"fmt"
	"net/netip"
	"strings"
)

// DefaultYAML is the embedded default: the one-box ("single") profile on
// loopback, so that `sipedge run` starts with no file.
//
//go:embed default.yaml
var DefaultYAML []byte

// DefaultName is how the embedded default is named in messages.
const DefaultName = "<embedded default>"

// Config is one box's whole configuration.
type Config struct {
	Node     Node     `yaml:"node"`
	Log      Log      `yaml:"log"`
	Control  Control  `yaml:"control"`
	Network  Network  `yaml:"network"`
	Watchdog Watchdog `yaml:"watchdog"`
	Web      Web      `yaml:"web"`
	SIP      *SIP     `yaml:"sip"` // nil on a DB box
	Cluster  *Cluster `yaml:"cluster"`
	VIPs     []VIP    `yaml:"vips"`
	Security Security `yaml:"security"`
	Time     Time     `yaml:"time"`    // time.go
	Console  Console  `yaml:"console"` // console.go
	Update   Update   `yaml:"update"`  // update.go

	// Source names the file the config came from (not in YAML).
	Source string `yaml:"-"`
	// Warnings are what the file may still say for compatibility but is
	// unsafe: the daemon runs and raises an alarm, `config validate`
	// fails (not in YAML).
	Warnings Problems `yaml:"-"`
}

// Node identifies the box.
type Node struct {
	Name     string `yaml:"name"`
	Profile  string `yaml:"profile"`  // single | ha-pair | three-box | four-box | full
	Platform string `yaml:"platform"` // board profile from platform/
	DataDir  string `yaml:"data_dir"` // bbolt store and runtime files
}

// Log sets the daemon's logging.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // auto | text | json
}

// Control is the local control socket used by `sipedge ctl`.
type Control struct {
	Socket string `yaml:"socket"` // default: <data_dir>/sipedge.sock
}

// Network is applied through the HAL at start.
type Network struct {
	Bonds      []Bond      `yaml:"bonds"`
	Management *Management `yaml:"management"`
	// DNS are the DNS servers that resolve names of the configuration
	// (daemon/resolve): literal IP addresses, optionally with :port
	// (default 53; an IPv6 address with a port in brackets), asked in
	// order, at most maxDNSServers. In the appliance the daemon writes
	// them to the image's /etc/resolv.conf (daemon/app/resolvconf.go);
	// elsewhere, empty means the host's /etc/resolv.conf.
	DNS []string `yaml:"dns"`
}

// DefaultDNSPort is the port of a network.dns server given without one.
const DefaultDNSPort = 53

// maxDNSServers bounds network.dns, as resolv.conf's MAXNS: each query
// may wait on every server in turn.
const maxDNSServers = 3

// DNSServers returns network.dns as addresses, with the default port
// where none is given; entries that do not parse (a validated config
// has none) are left out.
func (n Network) DNSServers() []netip.AddrPort {
	var out []netip.AddrPort
	for _, s := range n.DNS {
		if ap, ok := parseDNSServer(s); ok {
			out = append(out, ap)
		}
	}
	return out
}

// parseDNSServer reads "IP", "IP:port" or "[IPv6]:port".
func parseDNSServer(s string) (netip.AddrPort, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a, DefaultDNSPort), true
	}
	return netip.AddrPort{}, false
}

// Bond is one bonded interface.
type Bond struct {
	Name    string   `yaml:"name"`
	Mode    string   `yaml:"mode"` // active-backup | 802.3ad
	MIIMon  Duration `yaml:"miimon"`
	Primary string   `yaml:"primary"`
	Slaves  []string `yaml:"slaves"`
}

// Management is the box's own address on the management network.
type Management struct {
	Interface string       `yaml:"interface"`
	Address   netip.Prefix `yaml:"address"`
	Gateway   netip.Addr   `yaml:"gateway"`
}

// Watchdog is the hardware watchdog.
type Watchdog struct {
	Device  string   `yaml:"device"` // empty: no watchdog
	Timeout Duration `yaml:"timeout"`
}

// SIP is the balancer.
type SIP struct {
	Listen []string `yaml:"listen"` // "udp:IP:port", "tcp:IP:port", "tls:IP:port"
	// CorePort is the port of the Core-facing socket beside each UDP
	// listen address: requests toward the Cores (and the OPTIONS probes)
	// leave from it and the Cores answer to it, so that a flood on the
	// listen port cannot drown their answers. 0 (default): the first
	// UDP listen port + 10 (5070 for 5060; the next one up if a listen
	// address uses it), the same on both boxes of a pair; -1: none (the
	// Cores see the listen port).
	CorePort  int    `yaml:"core_port"`
	Algorithm string `yaml:"algorithm"` // round-robin | weighted | least-load | call-hash
	Probe     Probe  `yaml:"probe"`
	Retry     Retry  `yaml:"retry"`
	Cores     []Core `yaml:"cores"`
	// DialogTTL expires a dialog whose BYE was lost.
	DialogTTL Duration `yaml:"dialog_ttl"`
	// UDPBufferBytes sizes each UDP socket's kernel receive and send buffers.
	UDPBufferBytes int `yaml:"udp_buffer_bytes"`
	// Overload is admission control under overload.
	Overload Overload `yaml:"overload"`
	// TCP bounds the balancer's TCP connections.
	TCP TCP `yaml:"tcp"`
	// Caps bound the balancer's tables against floods from outside.
	Caps Caps `yaml:"caps"`
	// TLS is SIP over TLS: tls: listeners and tls: Cores (siptls.go).
	TLS SIPTLS `yaml:"tls"`
	// RawPaths (default true) lets the balancer forward the common
	// requests and responses from a raw scan of their bytes; false runs
	// every message through sipgo's parser (the full path), which reads
	// the same messages the same way, more slowly: a switch for
	// diagnosis.
	RawPaths *bool `yaml:"raw_paths"`
}

// Caps bound the tables that outside input grows. At a cap a new call
// gets 503 with Retry-After while calls already up go on; the last
// tenth of each cap is kept for the Cores and trusted sources.
type Caps struct {
	Dialogs      int `yaml:"dialogs"`      // calls in setup or up
	Transactions int `yaml:"transactions"` // server transactions, lingering ones included
	Branches     int `yaml:"branches"`     // client transactions toward Cores and next hops
	// SessionExpires clamps a negotiated Session-Expires (RFC 4028): a
	// dialog lives at most this long (plus 32 s) without a refresh.
	SessionExpires Duration `yaml:"session_expires"`
}

// TCP bounds the balancer's TCP connections, in Kamailio's manner
// (tcp_connection_lifetime, tcp_max_connections), so that idle or slow
// clients and connection floods cannot grow goroutines and memory.
type TCP struct {
	// IdleTimeout closes a connection (a caller's, or one dialled to a
	// Core) after this long without a message read or written.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MessageTimeout closes a connection whose message (headers and
	// body) is not complete this long after its first byte (slowloris).
	MessageTimeout Duration `yaml:"message_timeout"`
	// MaxConnections caps the inbound connections; past it a new one is
	// closed at once.
	MaxConnections int `yaml:"max_connections"`
	// MaxPerSource caps one source address's inbound connections (an
	// IPv6 source counts per /64).
	MaxPerSource int `yaml:"max_per_source"`
}

// Overload is admission control: when the worker that would take a new
// call is behind, the INVITE is refused at once with 503 and Retry-After
// so that the calls already taken keep completing (and no Core is judged
// by the balancer's own backlog).
type Overload struct {
	// QueueDelay: refuse new calls while messages wait this long in a
	// worker's queue (keep it well under T1 = 500 ms, when callers and
	// Cores start retransmitting).
	QueueDelay Duration `yaml:"queue_delay"`
	// QueueLength bounds each worker's queue (messages); new calls are
	// refused from 3/4 of it, and a datagram finding it full is dropped
	// (a stream's reader waits for room instead).
	QueueLength int `yaml:"queue_length"`
	// RetryAfter is the Retry-After (seconds) of the 503.
	RetryAfter int `yaml:"retry_after"`
}

// Probe is the OPTIONS health check of every Core.
type Probe struct {
	Interval  Duration `yaml:"interval"`
	Timeout   Duration `yaml:"timeout"`
	DownAfter int      `yaml:"down_after"`
	UpAfter   int      `yaml:"up_after"`
	Codes     []int    `yaml:"codes"`
}

// Retry is serial failover of an INVITE to the next Core.
type Retry struct {
	On             []int    `yaml:"on"`
	AttemptTimeout Duration `yaml:"attempt_timeout"`
	MaxTries       int      `yaml:"max_tries"`
}

// Core is one softswitch behind the balancer.
type Core struct {
	Name     string `yaml:"name"`
	Address  string `yaml:"address"` // [udp:|tcp:|tls:]IP:port (udp when no prefix)
	Weight   int    `yaml:"weight"`
	MaxCalls int    `yaml:"max_calls"` // 0: unlimited
	// TLSName is the name a tls: Core's certificate must carry
	// (required for tls: addresses, refused for the others).
	TLSName string `yaml:"tls_name"`
}

// Cluster is the peer box: heartbeats and replication.
type Cluster struct {
	Listen   string   `yaml:"listen"`
	Peer     string   `yaml:"peer"`
	KeyFile  string   `yaml:"key_file"`
	Interval Duration `yaml:"interval"`
	// HandoverRelay: after handing a VIP over, the box forwards packets
	// that still arrive for it to the new holder for this long, so an
	// ordered handover loses nothing (default 3s; negative: off).
	HandoverRelay Duration `yaml:"handover_relay"`
	// Replication is the hot-standby channel (replication.go).
	Replication Replication `yaml:"replication"`
}

// VIP is one virtual-IP group.
type VIP struct {
	Name      string       `yaml:"name"`
	Address   netip.Prefix `yaml:"address"`
	Interface string       `yaml:"interface"`
	Role      string       `yaml:"role"` // main | backup
	Priority  int          `yaml:"priority"`
	Deadtime  Duration     `yaml:"deadtime"`
	Initdead  Duration     `yaml:"initdead"`
	Failback  Failback     `yaml:"failback"`
	GARP      GARP         `yaml:"garp"`
	Track     []Track      `yaml:"track"`
	Notify    string       `yaml:"notify"`
	// PeerAddress is the peer's own address in the VIP's subnet, which
	// the placement check probes by ARP (default: cluster.peer's address
	// when it lies in the subnet).
	PeerAddress netip.Addr `yaml:"peer_address"`
	// Follows makes this a reader VIP: it lives on the box that does not
	// hold the named group (dbcheck.go).
	Follows *Follows `yaml:"follows"`
}

// Failback returns the VIP to the main box once it is back and stable.
type Failback struct {
	Enabled   *bool    `yaml:"enabled"` // default true
	StableFor Duration `yaml:"stable_for"`
}

// On reports whether failback is enabled (the default).
func (f Failback) On() bool { return f.Enabled == nil || *f.Enabled }

// GARP is the gratuitous-ARP announcement after a takeover.
type GARP struct {
	Count       int      `yaml:"count"`
	RepeatAfter Duration `yaml:"repeat_after"`
}

// Track is one health check of a VIP group; exactly one of SIPOptions,
// Link, TCP and MySQL is set.
type Track struct {
	SIPOptions string      `yaml:"sip_options"` // "local" or host:port
	Link       string      `yaml:"link"`        // interface name
	TCP        string      `yaml:"tcp"`         // host:port
	MySQL      *MySQLTrack `yaml:"mysql"`
	// Weight != 0: a failing check lowers the group's priority by |Weight|
	// (keepalived writes it negative, e.g. -20); 0 (the default): a
	// failing check puts the group in fault.
	Weight int `yaml:"weight"`
	Fall   int `yaml:"fall"` // consecutive failures to count as down (default 2)
	Rise   int `yaml:"rise"` // consecutive successes to count as up (default 2)
}

// Security is edge protection for the balancer.
type Security struct {
	// Trusted are the carriers' and Cores' networks, exempt from the
	// flood bans, the scanner filter and the untrusted policy. Default:
	// loopback (127.0.0.0/8, ::1/128); a list replaces it.
	Trusted   []Source `yaml:"trusted"`
	Untrusted string   `yaml:"untrusted"` // allow | refuse (403)
	// Relay is what an allowed untrusted source may make the balancer
	// do: "dialogs" (default) start calls toward the Core pool and go on
	// with dialogs the balancer knows (Call-ID and both tags), never
	// choose where it sends; "open" routes any request anywhere (RFC
	// 3261 loose routing for everyone): an open relay, for a lab only.
	Relay    string   `yaml:"relay"`
	Flood    Flood    `yaml:"flood"`
	Scanners []string `yaml:"scanners"`
	Limits   Limits   `yaml:"limits"`
}

// Source is a trusted source: a network, on every transport
// ("198.51.100.0/24", or a lone address "198.51.100.7") or on one
// ("tcp:203.0.113.0/24"); or a TLS identity ("tls-name:sbc.carrier.example",
// "tls-name:*.carrier.example"): a caller whose client certificate,
// verified against sip.tls.client_ca, carries the name (siptls.go).
type Source struct {
	Transport string // "" (any) | udp | tcp; "" for a TLS name
	Prefix    netip.Prefix
	// TLSName is set (lower case) for a tls-name: entry, whose Prefix
	// is then the zero (invalid) prefix, which contains no address.
	TLSName string
}

// tlsNamePrefix marks a TLS identity among the trusted sources.
const tlsNamePrefix = "tls-name:"

// UnmarshalText parses "[udp:|tcp:]CIDR-or-IP" or "tls-name:NAME".
func (s *Source) UnmarshalText(b []byte) error {
	v := string(b)
	if len(v) >= len(tlsNamePrefix) && strings.EqualFold(v[:len(tlsNamePrefix)], tlsNamePrefix) {
		name := v[len(tlsNamePrefix):]
		if err := checkDNSName(name, true); err != nil {
			return fmt.Errorf("tls-name: %q: %w", name, err)
		}
		*s = Source{TLSName: strings.ToLower(name)}
		return nil
	}
	tp := ""
	if t, rest, ok := strings.Cut(v, ":"); ok && (strings.EqualFold(t, "udp") || strings.EqualFold(t, "tcp")) {
		tp, v = strings.ToLower(t), rest
	}
	p, err := netip.ParsePrefix(v)
	if err != nil {
		a, aerr := netip.ParseAddr(v)
		if aerr != nil {
			return fmt.Errorf("want a network such as 198.51.100.0/24, an address, either prefixed with udp: or tcp:, or tls-name:NAME, got %q", b)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	*s = Source{Transport: tp, Prefix: p.Masked()}
	return nil
}

// MarshalText writes s as it is written in the file.
func (s Source) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s Source) String() string {
	switch {
	case s.TLSName != "":
		return tlsNamePrefix + s.TLSName
	case s.Transport == "":
		return s.Prefix.String()
	}
	return s.Transport + ":" + s.Prefix.String()
}

// IsTLSName reports whether s is a tls-name: entry rather than a network.
func (s Source) IsTLSName() bool { return s.TLSName != "" }

// TrustedNetworks are the security.trusted entries that are networks
// (trust by source address), in the file's order.
func (s Security) TrustedNetworks() []Source {
	var ns []Source
	for _, t := range s.Trusted {
		if !t.IsTLSName() {
			ns = append(ns, t)
		}
	}
	return ns
}

// TrustedTLSNames are the names of the security.trusted tls-name:
// entries (lower case; "*.example.com" covers one leftmost label), in
// the file's order.
func (s Security) TrustedTLSNames() []string {
	var ns []string
	for _, t := range s.Trusted {
		if t.IsTLSName() {
			ns = append(ns, t.TLSName)
		}
	}
	return ns
}

// TrustsTLSIdentity reports whether one of names (a verified client
// certificate's names, tlsconf.PeerIdentity) is a trusted TLS name:
// equal to a tls-name: entry, or covered by a wildcard one
// (*.example.com covers a.example.com, not a.b.example.com nor
// example.com). Case is ignored; a name with a '*' in it matches nothing.
func (s Security) TrustsTLSIdentity(names []string) bool {
	for _, t := range s.Trusted {
		if !t.IsTLSName() {
			continue
		}
		for _, n := range names {
			n = strings.ToLower(n)
			if strings.Contains(n, "*") {
				continue // a wildcard in a client certificate names no one
			}
			if n == t.TLSName {
				return true
			}
			if rest, ok := strings.CutPrefix(t.TLSName, "*."); ok {
				if label, parent, ok := strings.Cut(n, "."); ok && label != "" && parent == rest {
					return true
				}
			}
		}
	}
	return false
}

// Flood bans a source that sends too many requests.
type Flood struct {
	Requests int      `yaml:"requests"` // 0: flood protection off
	Per      Duration `yaml:"per"`
	Ban      Duration `yaml:"ban"`
	// Sources caps the sources whose rate is tracked (and the bans held):
	// memory stays bounded under a flood from spoofed addresses.
	Sources int `yaml:"sources"`
}

// Limits bound what a message may be.
type Limits struct {
	MessageBytes int `yaml:"message_bytes"`
	URIBytes     int `yaml:"uri_bytes"`
	Headers      int `yaml:"headers"`
}
