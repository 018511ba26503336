package config

import (
	"net/netip"
	"strconv"
)

// DefaultReplicationPort is the TCP port of the replication channel
// (the heartbeat's historical port is 694).
const DefaultReplicationPort = 695

// Replication is the hot-standby channel between the two edge boxes: the
// holder of the SIP VIP streams its dialog table and Core pool to the
// peer over TCP, every frame authenticated with the cluster key.
type Replication struct {
	// Enabled defaults to on for an edge box (sip: section) with a peer.
	Enabled *bool `yaml:"enabled"`
	// Port is used for Listen and Peer when they are not given.
	Port int `yaml:"port"`
	// Listen is this box's replication address (the stream to the peer
	// leaves from its IP); default: the IP of cluster.listen at Port.
	Listen string `yaml:"listen"`
	// Peer is the peer's replication address, and its IP the only
	// source a stream is accepted from; default: the IP of cluster.peer
	// at Port.
	Peer string `yaml:"peer"`
}

// On reports whether replication is enabled (after defaults).
func (r Replication) On() bool { return r.Enabled != nil && *r.Enabled }

// replicationDefaults fills cluster.replication; cl's own defaults first.
func (c *Config) replicationDefaults(cl *Cluster) {
	r := &cl.Replication
	if r.Enabled == nil {
		on := c.SIP != nil && cl.Peer != ""
		r.Enabled = &on
	}
	orInt(&r.Port, DefaultReplicationPort)
	at := func(hostport string) string {
		ap, err := netip.ParseAddrPort(hostport)
		if err != nil || r.Port <= 0 || r.Port > 65535 {
			return ""
		}
		return netip.AddrPortFrom(ap.Addr(), uint16(r.Port)).String()
	}
	orStr(&r.Listen, at(cl.Listen))
	orStr(&r.Peer, at(cl.Peer))
}

// validateReplication checks cluster.replication when it is enabled.
func (c *Config) validateReplication(cl *Cluster, add func(string, string, ...any)) {
	r := cl.Replication
	if !r.On() {
		return
	}
	const p = "cluster.replication"
	if r.Port <= 0 || r.Port > 65535 {
		add(p+".port", "%s is outside 1..65535", strconv.Itoa(r.Port))
		return
	}
	if c.SIP == nil {
		add(p+".enabled", "replication mirrors the SIP balancer: this box has no sip: section")
	}
	if r.Listen != "" {
		checkHostPort(add, p+".listen", r.Listen)
	}
	if r.Peer == "" {
		add(p+".peer", "must be set (or cluster.peer, whose IP it takes by default)")
	} else if checkHostPort(add, p+".peer", r.Peer) && r.Listen == r.Peer {
		add(p+".peer", "%s is this box's own replication address", r.Peer)
	}
}
