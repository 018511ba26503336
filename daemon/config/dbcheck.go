package config

import "strings"

// MySQLTrack is a database-aware health check (`track: [{mysql: {...}}]`):
// it logs in over the MySQL protocol and runs a query, so a mysqld that
// accepts TCP but never answers fails it (a tcp check passes).
type MySQLTrack struct {
	Address string `yaml:"address"` // IP:port, e.g. 127.0.0.1:3306
	User    string `yaml:"user"`
	// PasswordFile holds the user's password (surrounding whitespace
	// trimmed, at most 1 KiB, not readable by group or others); empty:
	// no password.
	PasswordFile string `yaml:"password_file"`
	Query        string `yaml:"query"` // default SELECT 1
	// Writable: while this box holds the VIP, fail when the server is
	// read_only (a writer VIP: its holder must take writes). A box that
	// does not hold it is not asked (notify promotes it at takeover).
	// A reader VIP accepts either.
	Writable bool `yaml:"writable"`
	// MaxLag: fail unless the server is a replica lagging at most this
	// (0: not checked).
	MaxLag Duration `yaml:"max_lag"`
	// Timeout bounds the login and the queries (default: the heartbeat
	// interval; the check runs every interval or every timeout, whichever
	// is longer).
	Timeout Duration `yaml:"timeout"`
}

// Follows names the primary group a reader VIP keeps away from.
type Follows struct {
	Group string `yaml:"group"`
	// On is where the reader lives relative to the primary's holder:
	// "peer" (the default, and the only value): the other box.
	On string `yaml:"on"`
}

// maxQueryBytes bounds a mysql check's query.
const maxQueryBytes = 1024

func (c *Config) validateMySQL(path string, v VIP, m *MySQLTrack, add func(string, string, ...any)) {
	checkHostPort(add, path+".address", m.Address)
	if m.User == "" {
		add(path+".user", "must be set (a user that may log in and run the query, e.g. one with USAGE only)")
	}
	if len(m.Query) > maxQueryBytes {
		add(path+".query", "%d bytes: at most %d", len(m.Query), maxQueryBytes)
	}
	if strings.ContainsRune(m.Query, 0) {
		add(path+".query", "must not contain NUL")
	}
	if m.MaxLag < 0 || m.Timeout < 0 {
		add(path, "max_lag and timeout must not be negative")
	}
	if m.Writable && v.Follows != nil {
		add(path+".writable", "a reader VIP (follows:) accepts a read-only database: remove writable")
	}
}

func (c *Config) validatePeerAddress(p string, v VIP, add func(string, string, ...any)) {
	if v.PeerAddress.IsValid() && v.Address.IsValid() && !v.Address.Masked().Contains(v.PeerAddress) {
		add(p+".peer_address", "%s is outside the VIP's subnet %s: give the peer's address on the VIP's segment", v.PeerAddress, v.Address.Masked())
	}
}

func (c *Config) validateFollows(p string, v VIP, add func(string, string, ...any)) {
	f := v.Follows
	if f == nil {
		return
	}
	if f.On != "" && f.On != "peer" {
		add(p+".follows.on", "%q: only peer (the reader lives on the box that does not hold %s)", f.On, f.Group)
	}
	var leader *VIP
	for i := range c.VIPs {
		if c.VIPs[i].Name == f.Group {
			leader = &c.VIPs[i]
		}
	}
	switch {
	case f.Group == "":
		add(p+".follows.group", "must name the primary VIP group")
	case f.Group == v.Name:
		add(p+".follows.group", "a group cannot follow itself")
	case leader == nil:
		add(p+".follows.group", "%q: no such VIP group on this box", f.Group)
	case leader.Follows != nil:
		add(p+".follows.group", "%q follows %q itself: follow a primary group", f.Group, leader.Follows.Group)
	}
	if v.Priority < 3 {
		add(p+".priority", "a reader VIP needs priority 3 or more (holding %s leaves it 2, waiting for it 1)", f.Group)
	}
}
