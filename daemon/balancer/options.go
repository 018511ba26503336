package balancer

import (
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/sipedge/sipedge/daemon/resolve"
)

// Algorithm names accepted in Options.Algorithm.
const (
	RoundRobin = "round-robin"
	Weighted   = "weighted"
	LeastLoad  = "least-load"
	CallHash   = "call-hash"
)

// Options configures a Balancer. Zero fields take the defaults documented
// on each field (see Options.withDefaults).
type Options struct {
	// Listen holds "udp:IP:port", "tcp:IP:port" and "tls:IP:port"
	// addresses (tls: needs TLS.Server). The IP must
	// be explicit: it is what the balancer writes into Via and
	// Record-Route. Sockets are bound with IP_FREEBIND, so a virtual IP
	// not (yet) present on the box can be listed.
	Listen []string
	// CorePort is the port of the Core-facing twin of each UDP listen
	// address (coresock.go): requests toward the Cores leave from it and
	// their answers come back to it. 0 (default): DefaultCorePort of the
	// listen addresses, the same on both boxes of a pair; CorePortAny: a
	// port the kernel chooses (tests); CorePortOff: no twins (the Cores
	// see the listen port).
	CorePort int
	// Algorithm is round-robin (default), weighted, least-load or call-hash.
	Algorithm string
	Probe     ProbeOptions
	Retry     RetryOptions
	Cores     []CoreConfig
	// TLS configures tls: listeners and tls: Cores (tlsconn.go).
	TLS TLSOptions
	// DNS resolves the Cores given by DNS name (dnscores.go): the
	// servers of network.dns, else of /etc/resolv.conf. Nil: such a Core
	// is refused.
	DNS *resolve.Resolver
	// DNSMinTTL is the shortest time between two resolutions of a
	// Core's name, whatever the records' TTL (default 5s).
	DNSMinTTL time.Duration

	// DialogTimeout ends a confirmed dialog whose BYE was lost: the dialog
	// expires this long after its last in-dialog request, or after its
	// Session-Expires (RFC 4028) plus 32 s when the call negotiated one.
	// Default 2h.
	DialogTimeout time.Duration
	// UDPReadBuffer and UDPWriteBuffer size the kernel socket buffers
	// (SO_RCVBUF/SO_SNDBUF, forced when running as root). Default 8 MiB
	// and 4 MiB: the kernel default of 208 KiB overflows during a GC pause
	// at a few thousand calls per second.
	UDPReadBuffer  int
	UDPWriteBuffer int
	// MaxMessageBytes is the intake size limit; larger messages get 513
	// when their headers can be read, else they are dropped. Default 16384.
	MaxMessageBytes int
	// MaxHeaders bounds the header fields of a request (400 Too Many
	// Headers above it). Default 128.
	MaxHeaders int
	// FullPath runs every message through sipgo's parser (sip.raw_paths:
	// false): the raw fast paths (a new call's INVITE, in-dialog requests,
	// the 2xx ACK, responses on our transactions) are off. They read the
	// same messages the same way (request.FuzzReadingsAgree); this is a
	// switch for diagnosis, and the tests run both ways.
	FullPath bool
	// MaxURIBytes bounds the Request-URI (414 Request-URI Too Long above
	// it). Default 512.
	MaxURIBytes int
	// Screen, if set, sees every message from the wire before anything
	// else is done with it (no parsing, no queueing, no transaction): the
	// edge's ACLs, ban table and scanner filter. It runs on the socket's
	// reader goroutine and must be cheap and must not keep data. It is
	// also asked with nil data when a TCP connection is accepted: Drop
	// (a banned source) closes the connection at once; a message
	// dropped over TCP closes its connection.
	Screen func(src netip.AddrPort, transport string, data []byte) Verdict
	// TxLinger is how long a completed transaction stays to absorb
	// retransmissions and the ACK of a non-2xx final response. Default 5s
	// (Kamailio's wait timer).
	TxLinger time.Duration
	// InviteTimeout is Timer C: how long a proceeding INVITE may ring
	// before the balancer CANCELs it and answers 408. Default 180s.
	InviteTimeout time.Duration
	// NonInviteTimeout is Timer F for a forwarded non-INVITE request
	// whose next hop sent a provisional (before one, Retry.AttemptTimeout
	// applies); then 504. Default 32s.
	NonInviteTimeout time.Duration
	// RetryAfter is the Retry-After value (seconds) sent with 503 when
	// every Core is full or down. Default 5.
	RetryAfter int
	// Workers is the number of message workers. Default GOMAXPROCS.
	Workers int
	// QueueLength bounds each worker's queue; a message that finds its
	// queue full is dropped (a UDP peer retransmits). Default 4096.
	QueueLength int
	// ShedDelay and ShedQueue are the admission thresholds: a new INVITE
	// whose worker is behind — the last message it took had waited
	// ShedDelay in its queue and more are queued, or ShedQueue messages
	// are queued — is answered 503 with Retry-After at once, unparsed, so
	// that the calls already taken keep completing. Defaults 100ms (under
	// T1/4: a message passes a queue several times per transaction, and
	// past T1 callers and Cores retransmit) and 3/4 of QueueLength;
	// negative turns either off.
	ShedDelay time.Duration
	ShedQueue int

	// TCPIdleTimeout closes a TCP connection (accepted, or dialled to a
	// Core) that has carried no message, either way, for this long
	// (Kamailio's tcp_connection_lifetime). Default 1h: longer than a
	// ringing INVITE (Timer C, 180 s) and a session-timer refresh
	// (30 min), so a call's connection to its caller stays up; the
	// message timeout and the caps bound what idle connections cost.
	TCPIdleTimeout time.Duration
	// TCPMessageTimeout closes a TCP connection whose message is not
	// complete (headers and body) this long after its first byte: a
	// slowloris trickling a header byte at a time. Default 10s.
	TCPMessageTimeout time.Duration
	// TCPMaxConnections caps the inbound TCP connections: past it a new
	// connection from a source not in TCPExempt is closed at once
	// (Kamailio's tcp_max_connections). Default 2048.
	TCPMaxConnections int
	// TCPMaxPerSource caps the inbound TCP connections of one source
	// address (an IPv6 source counts per /64), so that one host cannot
	// take every slot. Default 64.
	TCPMaxPerSource int
	// TCPExempt are the sources never refused by either cap (trusted
	// networks); the Cores' addresses always are. Their connections
	// still count toward TCPMaxConnections.
	TCPExempt []netip.Prefix

	// Relay is the routing policy for sources that are neither Cores nor
	// trusted (relay.go): RelayDialogs (default) forwards their requests
	// only toward the Core pool or along a dialog the balancer knows;
	// RelayOpen routes any request anywhere (a lab's setting: an open
	// relay on a public address).
	Relay string

	// MaxDialogs, MaxTransactions and MaxBranches cap the dialog table,
	// the server transactions and the client transactions (caps.go). At
	// a cap a new call or request gets 503 with Retry-After (an ACK is
	// dropped) while those already in the tables go on; the last tenth
	// of each is kept for Cores and trusted sources. Defaults 150,000,
	// 200,000 and 200,000 (a 2 GB box: 100,000 calls up and 8,000 calls
	// per second fit under them within ~300 MB).
	MaxDialogs      int
	MaxTransactions int
	MaxBranches     int
	// MaxSessionExpires clamps a negotiated Session-Expires (RFC 4028):
	// a dialog lives at most this long (plus 32 s) without a refresh.
	// Default 2h.
	MaxSessionExpires time.Duration

	Logger *slog.Logger
	// Events receives Core state changes (may be nil).
	Events Events
	// Dialogs observes the dialog table's changes (may be nil).
	Dialogs DialogObserver
}

// Verdict is a Screen's decision on one message. The zero Verdict
// accepts it; Drop discards it silently; a Code answers a request
// statelessly with Code and Reason (responses and ACKs are dropped).
type Verdict struct {
	Drop   bool
	Code   int
	Reason string
	// Trusted marks an accepted message from the box itself, a trusted
	// network or a Core: the routing policy (Options.Relay) does not
	// apply to it.
	Trusted bool
}

// ProbeOptions configures OPTIONS health probing of the Cores.
type ProbeOptions struct {
	Interval  time.Duration // default 5s
	Timeout   time.Duration // default 1s
	DownAfter int           // consecutive failures to go inactive, default 3
	UpAfter   int           // consecutive successes to come back, default 2
	Codes     []int         // accepted reply codes, default [200]
}

// RetryOptions configures serial failover within one call attempt.
type RetryOptions struct {
	On             []int         // final codes that move the call on, default [408 500 503]
	AttemptTimeout time.Duration // time for a next hop (a Core or not) to answer at all, default 2s; then failover, or 408 (INVITE) / 504
	MaxTries       int           // Cores tried per call, default 3
}

// CoreConfig describes one Core server.
type CoreConfig struct {
	Name     string `json:"name"`
	Address  string `json:"address"` // "IP:port" or a DNS name (a group: dnscores.go), optionally "udp:", "tcp:" or "tls:" prefixed
	Weight   int    `json:"weight"`  // default 1
	MaxCalls int    `json:"max_calls"`
	// TLSName is the name a tls: Core's certificate must carry (default:
	// the configured DNS name of a group; required for an IP).
	TLSName string `json:"tls_name,omitempty"`
}

func (o Options) withDefaults() Options {
	if o.TLS.HandshakeTimeout <= 0 {
		o.TLS.HandshakeTimeout = 5 * time.Second
	}
	if o.Algorithm == "" {
		o.Algorithm = RoundRobin
	}
	if o.Probe.Interval <= 0 {
		o.Probe.Interval = 5 * time.Second
	}
	if o.Probe.Timeout <= 0 {
		o.Probe.Timeout = time.Second
	}
	if o.Probe.DownAfter <= 0 {
		o.Probe.DownAfter = 3
	}
	if o.Probe.UpAfter <= 0 {
		o.Probe.UpAfter = 2
	}
	if len(o.Probe.Codes) == 0 {
		o.Probe.Codes = []int{200}
	}
	if o.Retry.On == nil {
		o.Retry.On = []int{408, 500, 503}
	}
	if o.Retry.AttemptTimeout <= 0 {
		o.Retry.AttemptTimeout = 2 * time.Second
	}
	if o.Retry.MaxTries <= 0 {
		o.Retry.MaxTries = 3
	}
	if o.DialogTimeout <= 0 {
		o.DialogTimeout = 2 * time.Hour
	}
	if o.UDPReadBuffer <= 0 {
		o.UDPReadBuffer = 8 << 20
	}
	if o.UDPWriteBuffer <= 0 {
		o.UDPWriteBuffer = 4 << 20
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 16384
	}
	if o.MaxHeaders <= 0 {
		o.MaxHeaders = 128
	}
	if o.MaxURIBytes <= 0 {
		o.MaxURIBytes = 512
	}
	if o.TxLinger <= 0 {
		o.TxLinger = 5 * time.Second
	}
	if o.InviteTimeout <= 0 {
		o.InviteTimeout = 180 * time.Second
	}
	if o.NonInviteTimeout <= 0 {
		o.NonInviteTimeout = 32 * time.Second
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = 5
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
		if o.Workers < 2 {
			o.Workers = 2
		}
	}
	if o.QueueLength <= 0 {
		o.QueueLength = 4096
	}
	if o.ShedQueue == 0 {
		o.ShedQueue = o.QueueLength * 3 / 4
	}
	if o.ShedDelay == 0 {
		o.ShedDelay = 100 * time.Millisecond
	}
	if o.TCPIdleTimeout <= 0 {
		o.TCPIdleTimeout = time.Hour
	}
	if o.TCPMessageTimeout <= 0 {
		o.TCPMessageTimeout = 10 * time.Second
	}
	if o.TCPMaxConnections <= 0 {
		o.TCPMaxConnections = 2048
	}
	if o.TCPMaxPerSource <= 0 {
		o.TCPMaxPerSource = 64
	}
	if o.Relay == "" {
		o.Relay = RelayDialogs
	}
	if o.MaxDialogs <= 0 {
		o.MaxDialogs = 150_000
	}
	if o.MaxTransactions <= 0 {
		o.MaxTransactions = 200_000
	}
	if o.MaxBranches <= 0 {
		o.MaxBranches = 200_000
	}
	if o.MaxSessionExpires <= 0 {
		o.MaxSessionExpires = 2 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func (o Options) validate() error {
	switch o.Algorithm {
	case RoundRobin, Weighted, LeastLoad, CallHash:
	default:
		return fmt.Errorf("unknown algorithm %q (want %s, %s, %s or %s)", o.Algorithm, RoundRobin, Weighted, LeastLoad, CallHash)
	}
	if o.Relay != RelayDialogs && o.Relay != RelayOpen {
		return fmt.Errorf("relay %q: want %s or %s", o.Relay, RelayDialogs, RelayOpen)
	}
	if len(o.Listen) == 0 {
		return fmt.Errorf("no listen address")
	}
	if o.CorePort < CorePortAny || o.CorePort > 65535 {
		return fmt.Errorf("core port %d: want 1..65535, 0 (the default), %d (none) or %d (any free port)", o.CorePort, CorePortOff, CorePortAny)
	}
	for _, l := range o.Listen {
		la, err := parseListen(l)
		if err != nil {
			return err
		}
		if la.transport == "tls" && o.TLS.Server == nil {
			return fmt.Errorf("listen %q: a tls: listener needs certificates (sip.tls)", l)
		}
		if la.transport == "udp" && o.CorePort > 0 && int(la.addr.Port()) == o.CorePort {
			return fmt.Errorf("core port %d: %s listens on it (the Core-facing socket needs a port of its own)", o.CorePort, l)
		}
	}
	seen := map[string]bool{}
	for _, c := range o.Cores {
		if err := c.validate(); err != nil {
			return err
		}
		if seen[c.Name] {
			return fmt.Errorf("core %q listed twice", c.Name)
		}
		seen[c.Name] = true
	}
	return nil
}

func (c CoreConfig) validate() error {
	if c.Name == "" {
		return fmt.Errorf("core %q: empty name", c.Address)
	}
	if _, err := parseCoreEndpoint(c.Address); err != nil {
		return fmt.Errorf("core %q: %w", c.Name, err)
	}
	if c.Weight < 0 || c.MaxCalls < 0 {
		return fmt.Errorf("core %q: negative weight or max_calls", c.Name)
	}
	return nil
}

// listenAddr is one parsed listen address.
type listenAddr struct {
	transport string // "udp", "tcp" or "tls"
	addr      netip.AddrPort
}

func parseListen(s string) (listenAddr, error) {
	tp, rest, ok := strings.Cut(s, ":")
	if !ok {
		return listenAddr{}, fmt.Errorf("listen %q: want udp:IP:port, tcp:IP:port or tls:IP:port", s)
	}
	tp = strings.ToLower(tp)
	if tp != "udp" && tp != "tcp" && tp != "tls" {
		return listenAddr{}, fmt.Errorf("listen %q: transport must be udp, tcp or tls", s)
	}
	ap, err := netip.ParseAddrPort(rest)
	if err != nil {
		return listenAddr{}, fmt.Errorf("listen %q: %w", s, err)
	}
	if ap.Addr().IsUnspecified() {
		return listenAddr{}, fmt.Errorf("listen %q: the address must be explicit (it goes into Via and Record-Route)", s)
	}
	return listenAddr{transport: tp, addr: ap}, nil
}

// coreEndpoint is a Core's address as configured: an IP address (one
// Core) or a DNS name (a group of Cores, one per target: dnscores.go).
type coreEndpoint struct {
	transport string         // "udp", "tcp" or "tls"
	addr      netip.AddrPort // an IP address; zero for a name
	host      string         // a DNS name (lower case, no trailing dot); "" for an IP
	port      uint16         // the name's explicit port (0: SRV, RFC 3263)
}

// defaultPort is the port of a transport when none is given: 5061 for
// TLS, 5060 otherwise (RFC 3261 19.1.2).
func defaultPort(tp string) uint16 {
	if tp == "tls" {
		return 5061
	}
	return 5060
}

// parseCoreEndpoint parses "[udp:|tcp:|tls:]HOST[:port]" where HOST is
// an IP address or a DNS name.
func parseCoreEndpoint(s string) (coreEndpoint, error) {
	ep := coreEndpoint{transport: "udp"}
	if t, rest, ok := strings.Cut(s, ":"); ok {
		switch strings.ToLower(t) {
		case "udp", "tcp", "tls":
			ep.transport, s = strings.ToLower(t), rest
		}
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		ep.addr = ap
		return ep, nil
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		ep.addr = netip.AddrPortFrom(a, defaultPort(ep.transport))
		return ep, nil
	}
	host, port := s, ""
	if h, p, ok := strings.Cut(s, ":"); ok {
		host, port = h, p
	}
	if port != "" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return coreEndpoint{}, fmt.Errorf("address %q: bad port %q", s, port)
		}
		ep.port = uint16(n)
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if !isDNSName(host) {
		return coreEndpoint{}, fmt.Errorf("address %q: want IP:port or a DNS name", s)
	}
	ep.host = host
	return ep, nil
}

// isDNSName reports whether s is a host name (RFC 1123 labels, at least
// one dot, not all digits: "10.1" is a typo, not a name).
func isDNSName(s string) bool {
	if len(s) == 0 || len(s) > 253 || !strings.Contains(s, ".") {
		return false
	}
	digits := true
	for _, l := range strings.Split(s, ".") {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			switch {
			case r >= 'a' && r <= 'z', r == '-', r == '_':
				digits = false
			case r >= '0' && r <= '9':
			default:
				return false
			}
		}
	}
	return !digits
}

// parseCoreAddress parses "[udp:|tcp:|tls:]IP[:port]" (port defaults to
// 5060, 5061 for TLS). A DNS name is an error here: it is a group
// (parseCoreEndpoint).
func parseCoreAddress(s string) (string, netip.AddrPort, error) {
	ep, err := parseCoreEndpoint(s)
	if err != nil {
		return "", netip.AddrPort{}, err
	}
	if ep.host != "" {
		return "", netip.AddrPort{}, fmt.Errorf("address %q: a DNS name, not one Core", s)
	}
	return ep.transport, ep.addr, nil
}
