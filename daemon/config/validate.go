package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// validate returns every problem with c (after defaults).
func (c *Config) validate(lines map[string]int) Problems {
	var ps Problems
	add := func(path, format string, args ...any) {
		ps = append(ps, Problem{Line: lineOf(lines, path), Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	oneOf := func(path, got string, allowed ...string) {
		for _, a := range allowed {
			if got == a {
				return
			}
		}
		add(path, "%q is not one of %s", got, strings.Join(allowed, ", "))
	}
	positive := func(path string, d Duration) bool {
		if d <= 0 {
			add(path, "must be more than zero")
			return false
		}
		return true
	}

	c.checkProfile(func(path, format string, args ...any) {
		l := lineOf(lines, path)
		if l == 0 {
			l = lines["node.profile"]
		}
		ps = append(ps, Problem{Line: l, Path: path, Msg: fmt.Sprintf(format, args...)})
	})
	if c.Node.DataDir == "" {
		add("node.data_dir", "must be set")
	}
	oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	oneOf("log.format", c.Log.Format, "auto", "text", "json")

	bonds := map[string]bool{}
	for i, b := range c.Network.Bonds {
		p := fmt.Sprintf("network.bonds[%d]", i)
		if b.Name == "" {
			add(p+".name", "must be set")
		} else if bonds[b.Name] {
			add(p+".name", "bond %q is defined twice", b.Name)
		}
		bonds[b.Name] = true
		oneOf(p+".mode", b.Mode, "active-backup", "802.3ad")
		positive(p+".miimon", b.MIIMon)
		if len(b.Slaves) == 0 {
			add(p+".slaves", "a bond needs at least one NIC")
		}
		if b.Primary != "" && !contains(b.Slaves, b.Primary) {
			add(p+".primary", "%q is not one of the bond's slaves", b.Primary)
		}
	}
	if m := c.Network.Management; m != nil {
		if m.Interface == "" {
			add("network.management.interface", "must be set")
		}
		if !m.Address.IsValid() {
			add("network.management.address", "must be an address with its prefix length, e.g. 192.0.2.11/24")
		}
	}
	c.validateDNS(add)
	if c.Watchdog.Device != "" && c.Watchdog.Timeout.D() < time.Second {
		add("watchdog.timeout", "must be at least 1s")
	}
	c.Web.validate(add)

	if s := c.SIP; s != nil {
		c.validateSIP(s, add, oneOf, positive)
	}

	if cl := c.Cluster; cl != nil {
		if checkHostPort(add, "cluster.listen", cl.Listen) && netip.MustParseAddrPort(cl.Listen).Addr().IsUnspecified() {
			add("cluster.listen", "%q: want this box's own address: heartbeats leave from it, and the peer accepts them only from its cluster.peer address", cl.Listen)
		}
		if cl.Peer != "" && checkHostPort(add, "cluster.peer", cl.Peer) && netip.MustParseAddrPort(cl.Peer).Addr().IsUnspecified() {
			add("cluster.peer", "%q: want the peer box's address", cl.Peer)
		}
		positive("cluster.interval", cl.Interval)
		c.validateReplication(cl, add)
	}
	if len(c.VIPs) > 0 && c.Cluster == nil && c.Node.Profile != "single" {
		add("vips", "virtual IPs are shared with a peer: add a cluster: section")
	}
	names := map[string]bool{}
	for i, v := range c.VIPs {
		p := fmt.Sprintf("vips[%d]", i)
		if v.Name == "" {
			add(p+".name", "must be set")
		} else if names[v.Name] {
			add(p+".name", "VIP group %q is defined twice", v.Name)
		} else if len(v.Name) > 64 || strings.ContainsFunc(v.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			// The heartbeat carries a name in 1..64 bytes; control
			// characters mark its own entries (the pair summary, the
			// session extension).
			add(p+".name", "%q: at most 64 bytes, no control characters", v.Name)
		}
		names[v.Name] = true
		if !v.Address.IsValid() {
			add(p+".address", "must be an address with its prefix length, e.g. 192.0.2.10/24")
		}
		if v.Interface == "" {
			add(p+".interface", "must be set")
		}
		oneOf(p+".role", v.Role, "main", "backup")
		if v.Priority < 1 || v.Priority > 254 {
			add(p+".priority", "%d is outside 1..254", v.Priority)
		}
		if positive(p+".deadtime", v.Deadtime) && c.Cluster != nil && v.Deadtime < 2*c.Cluster.Interval {
			add(p+".deadtime", "%s must be at least two heartbeat intervals (cluster.interval %s), or one late heartbeat is a takeover", v.Deadtime, c.Cluster.Interval)
		}
		if v.Initdead < v.Deadtime {
			add(p+".initdead", "%s must be at least the deadtime (%s): a booting box waits longer than a running one", v.Initdead, v.Deadtime)
		}
		if v.GARP.Count < 0 {
			add(p+".garp.count", "must not be negative")
		}
		if v.Failback.StableFor < 0 {
			add(p+".failback.stable_for", "must not be negative")
		}
		c.validateFollows(p, v, add)
		c.validatePeerAddress(p, v, add)
		for j, t := range v.Track {
			tp := fmt.Sprintf("%s.track[%d]", p, j)
			n := 0
			for _, s := range []string{t.SIPOptions, t.Link, t.TCP} {
				if s != "" {
					n++
				}
			}
			if t.MySQL != nil {
				n++
				c.validateMySQL(tp+".mysql", v, t.MySQL, add)
			}
			if n != 1 {
				add(tp, "set exactly one of sip_options, link, tcp, mysql")
			}
			if t.Weight < -253 || t.Weight > 253 {
				add(tp+".weight", "%d is outside -253..253", t.Weight)
			}
			if t.Fall < 0 || t.Rise < 0 {
				add(tp, "fall and rise must not be negative")
			}
			if t.TCP != "" {
				checkHostPort(add, tp+".tcp", t.TCP)
			}
			if t.SIPOptions != "" && t.SIPOptions != "local" {
				checkHostPort(add, tp+".sip_options", t.SIPOptions)
			}
		}
	}

	sec := c.Security
	c.validateTrustedTLS(add)
	oneOf("security.untrusted", sec.Untrusted, "allow", "refuse")
	oneOf("security.relay", sec.Relay, "dialogs", "open")
	if sec.Flood.Requests < 0 {
		add("security.flood.requests", "must not be negative (0 turns flood protection off)")
	}
	positive("security.flood.per", sec.Flood.Per)
	positive("security.flood.ban", sec.Flood.Ban)
	if sec.Flood.Sources < 1024 {
		add("security.flood.sources", "%d is below 1024", sec.Flood.Sources)
	}
	if sec.Limits.MessageBytes < 512 || sec.Limits.MessageBytes > 65535 {
		add("security.limits.message_bytes", "%d is outside 512..65535", sec.Limits.MessageBytes)
	}
	if sec.Limits.URIBytes < 32 {
		add("security.limits.uri_bytes", "%d is below 32", sec.Limits.URIBytes)
	}
	if sec.Limits.Headers < 8 {
		add("security.limits.headers", "%d is below 8", sec.Limits.Headers)
	}
	c.validateTime(add)
	c.validateConsole(add)
	c.validateUpdate(add)
	return ps
}

func (c *Config) validateSIP(s *SIP, add func(string, string, ...any), oneOf func(string, string, ...string), positive func(string, Duration) bool) {
	if len(s.Listen) == 0 {
		add("sip.listen", "needs at least one listener such as udp:127.0.0.1:5060")
	}
	seen := map[string]bool{}
	stream := map[string]string{} // IP:port -> the tcp: or tls: listener on it
	for i, l := range s.Listen {
		p := fmt.Sprintf("sip.listen[%d]", i)
		proto, hp, ok := SplitTransport(l)
		if !ok || proto == "" {
			add(p, "%q: want udp:IP:port, tcp:IP:port or tls:IP:port", l)
			continue
		}
		if !checkHostPort(add, p, hp) {
			continue
		}
		if seen[l] {
			add(p, "%q is listed twice", l)
		} else if other, dup := stream[hp]; dup && proto != TransportUDP {
			add(p, "%q: %s listens on the same TCP address", l, other)
		}
		seen[l] = true
		if proto != TransportUDP {
			stream[hp] = l
		}
	}
	s.validateTLS(add, oneOf)
	oneOf("sip.algorithm", s.Algorithm, "round-robin", "weighted", "least-load", "call-hash")
	if positive("sip.probe.interval", s.Probe.Interval) && positive("sip.probe.timeout", s.Probe.Timeout) && s.Probe.Timeout > s.Probe.Interval {
		add("sip.probe.timeout", "%s is longer than the probe interval %s", s.Probe.Timeout, s.Probe.Interval)
	}
	if s.Probe.DownAfter < 1 {
		add("sip.probe.down_after", "must be at least 1")
	}
	if s.Probe.UpAfter < 1 {
		add("sip.probe.up_after", "must be at least 1")
	}
	for i, code := range s.Probe.Codes {
		if code < 100 || code > 699 {
			add(fmt.Sprintf("sip.probe.codes[%d]", i), "%d is not a SIP status code", code)
		}
	}
	for i, code := range s.Retry.On {
		if code < 300 || code > 699 {
			add(fmt.Sprintf("sip.retry.on[%d]", i), "%d is not a SIP failure code (300..699)", code)
		}
	}
	positive("sip.retry.attempt_timeout", s.Retry.AttemptTimeout)
	if s.Retry.MaxTries < 1 {
		add("sip.retry.max_tries", "must be at least 1")
	}
	positive("sip.dialog_ttl", s.DialogTTL)
	if s.UDPBufferBytes < 65536 {
		add("sip.udp_buffer_bytes", "%d is below 65536", s.UDPBufferBytes)
	}
	if p := s.CorePort; p < -1 || p > 65535 {
		add("sip.core_port", "%d is outside 1..65535 (0: the listen port + 10, -1: none)", p)
	} else if p > 0 {
		for _, l := range s.Listen {
			if tp, ap, ok := strings.Cut(l, ":"); ok && strings.EqualFold(tp, "udp") && strings.HasSuffix(ap, ":"+strconv.Itoa(p)) {
				add("sip.core_port", "%d is the port of listen address %s: the Core-facing socket needs a port of its own", p, l)
			}
		}
	}
	if d := s.Overload.QueueDelay.D(); d <= 0 || d >= 500*time.Millisecond {
		add("sip.overload.queue_delay", "%v is outside (0, 500ms): past T1 callers and Cores retransmit and the backlog feeds itself", d)
	}
	if n := s.Overload.QueueLength; n < 64 || n > 1<<20 {
		add("sip.overload.queue_length", "%d is outside 64..1048576", n)
	}
	if n := s.Overload.RetryAfter; n < 1 || n > 3600 {
		add("sip.overload.retry_after", "%d is outside 1..3600 seconds", n)
	}
	if positive("sip.tcp.idle_timeout", s.TCP.IdleTimeout) && positive("sip.tcp.message_timeout", s.TCP.MessageTimeout) &&
		s.TCP.MessageTimeout > s.TCP.IdleTimeout {
		add("sip.tcp.message_timeout", "%s is longer than sip.tcp.idle_timeout %s", s.TCP.MessageTimeout, s.TCP.IdleTimeout)
	}
	for _, cp := range []struct {
		path string
		n    int
	}{{"sip.caps.dialogs", s.Caps.Dialogs}, {"sip.caps.transactions", s.Caps.Transactions}, {"sip.caps.branches", s.Caps.Branches}} {
		if cp.n < 100 || cp.n > 10_000_000 {
			add(cp.path, "%d is outside 100..10000000", cp.n)
		}
	}
	if d := s.Caps.SessionExpires.D(); d < 90*time.Second {
		add("sip.caps.session_expires", "%v is below RFC 4028's minimum of 90s", d)
	}
	n, per := s.TCP.MaxConnections, s.TCP.MaxPerSource
	okN := n >= 1 && n <= maxTCPConnections
	if !okN {
		add("sip.tcp.max_connections", "%d is outside 1..%d (each connection holds a goroutine and a 16 KiB read buffer)", n, maxTCPConnections)
	}
	if per < 1 {
		add("sip.tcp.max_per_source", "must be at least 1")
	} else if okN && per > n {
		add("sip.tcp.max_per_source", "%d is more than sip.tcp.max_connections (%d)", per, n)
	}
	names, addrs := map[string]int{}, map[string]int{}
	for i, co := range s.Cores {
		p := fmt.Sprintf("sip.cores[%d]", i)
		if co.Name == "" {
			add(p+".name", "must be set")
		} else if j, dup := names[co.Name]; dup {
			add(p+".name", "core %q is already sip.cores[%d]", co.Name, j)
		} else {
			names[co.Name] = i
		}
		tp, hp, ok := SplitTransport(co.Address)
		byName := ok && coreName(hp) != ""
		switch {
		case !ok:
			add(p+".address", "%q: the transport is udp:, tcp: or tls:, in lower case (udp when none is given)", co.Address)
		case byName:
			// A DNS name: a group of Cores, resolved by network.dns.
			key := strings.ToLower(hp)
			if j, dup := addrs[key]; dup {
				add(p+".address", "%s is already the address of sip.cores[%d]", co.Address, j)
			} else {
				addrs[key] = i
			}
		case strings.ContainsAny(strings.ToLower(hp), "abcdefghijklmnopqrstuvwxyz") && !strings.Contains(hp, "["):
			add(p+".address", "%q: neither IP:port nor a DNS name (letters, digits and hyphens in dot-separated labels, e.g. cores.example.net)", hp)
		case checkHostPort(add, p+".address", hp):
			// One Core, one IP:port, whatever the transport.
			key := netip.MustParseAddrPort(hp).String()
			if j, dup := addrs[key]; dup {
				add(p+".address", "%s is already the address of sip.cores[%d]", co.Address, j)
			} else {
				addrs[key] = i
			}
		}
		if ok {
			validateCoreTLS(add, p, co, tp, byName)
		}
		if co.Weight < 1 || co.Weight > 1000 {
			add(p+".weight", "%d is outside 1..1000", co.Weight)
		}
		if co.MaxCalls < 0 {
			add(p+".max_calls", "must not be negative (0 means unlimited)")
		}
	}
}

// maxTCPConnections bounds sip.tcp.max_connections: at ~30 KiB each
// (goroutine, read buffer), 16384 idle connections take ~480 MiB.
const maxTCPConnections = 16384

// coreName returns the DNS name of a Core's address given by name
// ("cores.example.net" or "cores.example.net:5080"), "" for anything
// else (an IP, or not a name at all).
func coreName(s string) string {
	host, port := s, ""
	if h, p, ok := strings.Cut(s, ":"); ok {
		host, port = h, p
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return ""
		}
	}
	if _, err := netip.ParseAddr(host); err == nil || !strings.Contains(host, ".") || checkDNSName(host, false) != nil {
		return ""
	}
	if strings.Trim(strings.ReplaceAll(host, ".", ""), "0123456789") == "" {
		return "" // all digits: a mistyped IP, not a name
	}
	return host
}

// checkHostPort reports whether s is IP:port (a literal IP, port 1..65535).
func checkHostPort(add func(string, string, ...any), path, s string) bool {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		if _, port, e := splitPort(s); e == nil && port > 0 {
			add(path, "%q: want a literal IP address and port, e.g. 192.0.2.10:5060 (names are not resolved)", s)
		} else {
			add(path, "%q: want IP:port, e.g. 192.0.2.10:5060", s)
		}
		return false
	}
	if ap.Port() == 0 {
		add(path, "%q: port 0 is not allowed", s)
		return false
	}
	return true
}

func splitPort(s string) (string, int, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", 0, fmt.Errorf("no port")
	}
	p, err := strconv.Atoi(s[i+1:])
	return s[:i], p, err
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// validateDNS checks network.dns: literal addresses of servers, each
// once, optionally with a port.
func (c *Config) validateDNS(add func(string, string, ...any)) {
	servers := c.Network.DNS
	if len(servers) > maxDNSServers {
		add("network.dns", "%d servers: at most %d", len(servers), maxDNSServers)
	}
	seen := map[netip.AddrPort]bool{}
	for i, s := range servers {
		p := fmt.Sprintf("network.dns[%d]", i)
		ap, ok := parseDNSServer(s)
		switch {
		case !ok:
			add(p, "%q: want an IP address, optionally with :port, e.g. 192.0.2.53 or 192.0.2.53:53 (names are not resolved)", s)
		case ap.Port() == 0:
			add(p, "%q: port 0 is not allowed", s)
		case ap.Addr().IsUnspecified() || ap.Addr().IsMulticast():
			add(p, "%q: want a server's address", s)
		case seen[ap]:
			add(p, "%q is listed twice", s)
		}
		seen[ap] = true
	}
}
