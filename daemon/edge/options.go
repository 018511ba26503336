package edge

import (
	"log/slog"
	"net/netip"
	"strings"
	"time"
)

// Untrusted policies.
const (
	Allow  = "allow"
	Refuse = "refuse"
)

// Rule is one trusted network; Transport "" matches every transport.
type Rule struct {
	Transport string // "" | "udp" | "tcp"
	Prefix    netip.Prefix
}

// Options configure a Guard. Zero fields take the documented defaults.
type Options struct {
	// Trusted networks are exempt from every check here.
	Trusted []Rule
	// Untrusted is Allow (default) or Refuse: every request from outside
	// Trusted is answered 403.
	Untrusted string
	// FloodRequests per FloodPer from one source bans it for FloodBan.
	// FloodRequests 0 turns flood detection off. Defaults 16 / 2s / 5m.
	FloodRequests int
	FloodPer      time.Duration
	FloodBan      time.Duration
	// MaxSources caps the sources tracked, and separately the bans held
	// (default 65536). A full table evicts an arbitrary entry.
	MaxSources int
	// Scanners are User-Agent substrings (case-insensitive) dropped
	// silently.
	Scanners []string

	// Store keeps the bans across restarts (may be nil).
	Store BanStore
	// OnBan is told of every new ban (an event; may be nil). It runs on
	// the hot path: it must not block.
	OnBan  func(Ban)
	Logger *slog.Logger
	Now    func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Untrusted == "" {
		o.Untrusted = Allow
	}
	if o.FloodPer <= 0 {
		o.FloodPer = 2 * time.Second
	}
	if o.FloodBan <= 0 {
		o.FloodBan = 5 * time.Minute
	}
	if o.MaxSources <= 0 {
		o.MaxSources = 65536
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// policy is the part of the options a reload replaces.
type policy struct {
	trusted   []Rule
	refuse    bool
	requests  int
	per       int64 // ns
	ban       int64 // ns
	perShard  int
	scanners  [][]byte // lower case
	anyScan   bool
	untrusted string
}

func newPolicy(o Options) *policy {
	p := &policy{
		refuse: o.Untrusted == Refuse, untrusted: o.Untrusted,
		requests: o.FloodRequests, per: int64(o.FloodPer), ban: int64(o.FloodBan),
		perShard: (o.MaxSources + shards - 1) / shards,
	}
	for _, r := range o.Trusted {
		r.Transport = strings.ToLower(r.Transport)
		r.Prefix = r.Prefix.Masked()
		p.trusted = append(p.trusted, r)
	}
	for _, s := range o.Scanners {
		if s = strings.TrimSpace(s); s != "" {
			p.scanners = append(p.scanners, []byte(strings.ToLower(s)))
		}
	}
	p.anyScan = len(p.scanners) > 0
	return p
}

// trusted reports whether a source is in a trusted network for transport.
func (p *policy) isTrusted(a netip.Addr, transport string) bool {
	for _, r := range p.trusted {
		if (r.Transport == "" || r.Transport == transport) && r.Prefix.Contains(a) {
			return true
		}
	}
	return false
}
