package failover

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"
)

// Defaults for fields left zero.
const (
	DefaultInterval      = time.Second
	DefaultDeadtime      = 10 * time.Second
	DefaultReplayWindow  = 30 * time.Second
	DefaultStableFor     = 5 * time.Second
	DefaultGARPCount     = 5
	DefaultNotifyTimeout = 10 * time.Second
	DefaultPriorityMain  = 150
	DefaultPriorityBack  = 100
)

// Options configures a Manager.
type Options struct {
	// Node is this box's id, unique in the cluster (the node name). It
	// breaks priority ties: the lower id is preferred.
	Node string
	// Listen is the heartbeat UDP address ("ip:port").
	Listen string
	// Peers are the peers' heartbeat addresses.
	Peers []string
	// Key is the shared HMAC key (at least 16 bytes).
	Key []byte
	// Interval between heartbeats (default 1 s).
	Interval time.Duration
	// ReplayWindow: at first contact with a peer of the previous release
	// (no session), its timestamp must be within this of our wall clock
	// (default 30 s, as that release checks). Heartbeats of this release
	// never depend on a clock (session.go).
	ReplayWindow time.Duration
	Groups       []GroupOptions

	Logger  *slog.Logger
	Events  Events   // may be nil
	Metrics *Metrics // may be nil
	Clock   Clock    // nil: the system clock
	// WallClock is read only for the timestamp heartbeats carry (for a
	// peer of the previous release) and the first sequence number (nil:
	// Clock). Clock serves every timer; tests step WallClock alone, as
	// a step of the real clock leaves Go's monotonic readings alone.
	WallClock Clock
	// Beat, if set, is called on every turn of the event loop (at least
	// once per interval): the daemon's liveness feeds on it.
	Beat func()
	// Persist keeps the operator's pins and the relay's original sysctl
	// values across restarts (may be nil: nothing survives).
	Persist Persist
	// RelayFor: after releasing an IPv4 VIP, forward packets that still
	// arrive for it to the new holder for this long (relay.go). 0 means
	// DefaultRelayFor; negative turns the relay off. It needs a Network
	// that implements hal.Relayer.
	RelayFor time.Duration
	// PlacementEvery: run the VIP placement check (placement.go) this
	// often, besides at start and after a change of holder. 0 means
	// DefaultPlacementEvery; negative turns it off. It needs a Network
	// that implements hal.ARPProber.
	PlacementEvery time.Duration
	// OnPlacement, if set, is called when a group's placement verdict or
	// findings change (the daemon raises or clears an alarm).
	OnPlacement func(group string, info PlacementInfo)
}

// GroupOptions configures one VIP group.
type GroupOptions struct {
	Name      string
	Address   netip.Prefix
	Interface string
	Role      Role
	// Priority 1..254; 0 means the role's default (main 150, backup 100).
	Priority int
	Deadtime time.Duration // default 10 s
	// Initdead: how long to wait at start to hear the peer before
	// claiming the VIP (default 2 x deadtime).
	Initdead time.Duration
	// Failback (auto-failback, on by default in the config): the holder
	// returns the VIP to a preferred peer once that peer has been heard,
	// healthy and preferred, for StableFor: 0 means DefaultStableFor,
	// negative no wait (hand back on the first such heartbeat).
	Failback  bool
	StableFor time.Duration
	// GARPCount announcements are sent at takeover and again
	// GARPRepeatAfter later (0: no repeat).
	GARPCount       int
	GARPRepeatAfter time.Duration
	Track           []TrackOptions
	// Notify is a program run on every transition as
	// "Notify GROUP NEWSTATE OLDSTATE REASON", killed after NotifyTimeout.
	Notify        string
	NotifyTimeout time.Duration
	// PeerAddress is the peer's own address in the VIP's subnet, which
	// the placement check probes (invalid: the peer's heartbeat address
	// when it lies in the subnet).
	PeerAddress netip.Addr
	// Follows names a primary group: this group (a reader VIP) lives on
	// the box that does not hold the primary (follow.go).
	Follows string
}

// Check kinds.
const (
	CheckTCP        = "tcp"
	CheckSIPOptions = "sip_options"
	CheckLink       = "link"
)

// TrackOptions is one health check of a group.
type TrackOptions struct {
	Kind   string // tcp | sip_options | link | mysql
	Target string // host:port for tcp, sip_options and mysql; interface for link
	// MySQL is the login and conditions of a mysql check.
	MySQL *MySQLOptions
	// Weight > 0: a failing check lowers the priority by Weight.
	// Weight 0: a failing check puts the group in fault.
	Weight   int
	Interval time.Duration // default: the heartbeat interval
	Timeout  time.Duration // default: Interval
	Fall     int           // consecutive failures to go down (default 2)
	Rise     int           // consecutive successes to come up (default 2)
}

func (t TrackOptions) String() string { return t.Kind + ":" + t.Target }

// withDefaults fills zero fields and validates.
func (o Options) withDefaults() (Options, error) {
	if o.Node == "" || len(o.Node) > maxNameLen {
		return o, fmt.Errorf("node id must be 1..%d bytes", maxNameLen)
	}
	if len(o.Key) < 16 {
		return o, errors.New("cluster key must be at least 16 bytes")
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.ReplayWindow <= 0 {
		o.ReplayWindow = DefaultReplayWindow
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = SystemClock{}
	}
	if o.WallClock == nil {
		o.WallClock = o.Clock
	}
	if o.RelayFor == 0 {
		o.RelayFor = DefaultRelayFor
	}
	if o.PlacementEvery == 0 {
		o.PlacementEvery = DefaultPlacementEvery
	}
	if len(o.Groups) > maxGroups-1 { // one entry is the session extension
		return o, fmt.Errorf("%d VIP groups, at most %d", len(o.Groups), maxGroups-1)
	}
	seen := map[string]bool{}
	groups := make([]GroupOptions, len(o.Groups))
	for i, g := range o.Groups {
		if g.Name == "" || len(g.Name) > maxNameLen || g.Name[0] == 0 {
			return o, fmt.Errorf("vip %d: name must be 1..%d bytes, not starting with NUL", i, maxNameLen)
		}
		if seen[g.Name] {
			return o, fmt.Errorf("vip %q: duplicate name", g.Name)
		}
		seen[g.Name] = true
		if !g.Address.IsValid() {
			return o, fmt.Errorf("vip %q: no address", g.Name)
		}
		if g.Interface == "" {
			return o, fmt.Errorf("vip %q: no interface", g.Name)
		}
		switch g.Role {
		case RoleMain, RoleBackup:
		case "":
			g.Role = RoleBackup
		default:
			return o, fmt.Errorf("vip %q: role %q (want main or backup)", g.Name, g.Role)
		}
		if g.Priority == 0 {
			g.Priority = DefaultPriorityBack
			if g.Role == RoleMain {
				g.Priority = DefaultPriorityMain
			}
		}
		if g.Priority < 1 || g.Priority > 254 {
			return o, fmt.Errorf("vip %q: priority %d out of 1..254", g.Name, g.Priority)
		}
		if g.Deadtime <= 0 {
			g.Deadtime = DefaultDeadtime
		}
		if g.Deadtime < 2*o.Interval {
			return o, fmt.Errorf("vip %q: deadtime %v shorter than two heartbeat intervals (%v)", g.Name, g.Deadtime, o.Interval)
		}
		if g.Initdead <= 0 {
			g.Initdead = 2 * g.Deadtime
		}
		switch {
		case g.StableFor == 0:
			g.StableFor = DefaultStableFor
		case g.StableFor < 0:
			g.StableFor = 0 // no wait, as the config's stable_for: 0s
		}
		if g.GARPCount <= 0 {
			g.GARPCount = DefaultGARPCount
		}
		if g.NotifyTimeout <= 0 {
			g.NotifyTimeout = DefaultNotifyTimeout
		}
		tr := make([]TrackOptions, len(g.Track))
		for j, t := range g.Track {
			switch t.Kind {
			case CheckTCP, CheckSIPOptions, CheckLink, CheckMySQL:
			default:
				return o, fmt.Errorf("vip %q: track %d: unknown kind %q", g.Name, j, t.Kind)
			}
			if t.Target == "" {
				return o, fmt.Errorf("vip %q: track %d (%s): no target", g.Name, j, t.Kind)
			}
			if t.Weight < 0 {
				t.Weight = -t.Weight // "weight: -20" reads naturally too
			}
			if t.Interval <= 0 {
				t.Interval = o.Interval
			}
			if t.Timeout <= 0 || t.Timeout > t.Interval {
				t.Timeout = t.Interval
			}
			if t.Fall <= 0 {
				t.Fall = 2
			}
			if t.Rise <= 0 {
				t.Rise = 2
			}
			tr[j] = t
		}
		g.Track = tr
		groups[i] = g
	}
	o.Groups = groups
	return o, checkFollows(groups)
}
