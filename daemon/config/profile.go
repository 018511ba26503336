package config

import (
	"fmt"
	"sort"
	"strings"
)

// Profile is a deployment layout of DESIGN.md: how many boxes, what each
// box needs in its file, and what the layout protects against.
type Profile struct {
	Name        string
	Boxes       int
	Summary     string
	Protects    []string
	NotProtects []string
	// EdgeNeedsPeer: an edge (SIP) box of this layout has a peer box and
	// shares a VIP with it.
	EdgeNeedsPeer bool
	// DBNeedsPeer: a DB box (no sip: section) has a peer and a VIP.
	DBNeedsPeer bool
	// HasDB: the layout has separate DB boxes.
	HasDB bool
}

// Profiles are the deployment layouts the firmware knows.
var Profiles = map[string]Profile{
	"single": {
		Name: "single", Boxes: 1,
		Summary:     "one box: balancer (and whatever runs beside it), no redundancy",
		Protects:    []string{"a failed Core (calls go to the remaining Cores)", "a failed NIC (with a bond)"},
		NotProtects: []string{"the box itself: when it fails, service stops"},
	},
	"ha-pair": {
		Name: "ha-pair", Boxes: 2, EdgeNeedsPeer: true,
		Summary:     "two balancer boxes sharing the SIP VIP (main and backup)",
		Protects:    []string{"a failed balancer box (backup takes the VIP)", "a failed Core", "a failed NIC (with a bond)", "a hung daemon (watchdog)"},
		NotProtects: []string{"the database (no DB boxes in this layout)"},
	},
	"three-box": {
		Name: "three-box", Boxes: 3, EdgeNeedsPeer: true, HasDB: true,
		Summary:     "a balancer pair plus one DB box",
		Protects:    []string{"a failed balancer box", "a failed Core", "a failed NIC (with a bond)"},
		NotProtects: []string{"the DB box: there is only one"},
	},
	"four-box": {
		Name: "four-box", Boxes: 4, EdgeNeedsPeer: true, DBNeedsPeer: true, HasDB: true,
		Summary:     "a balancer pair plus a DB main/backup pair, each pair with its VIP",
		Protects:    []string{"a failed balancer box", "a failed DB box", "a failed Core", "a failed NIC (with a bond)"},
		NotProtects: []string{"losing both boxes of one pair"},
	},
	"full": {
		Name: "full", Boxes: 4, EdgeNeedsPeer: true, DBNeedsPeer: true, HasDB: true,
		Summary:     "the largest layout: balancer pair, DB pair, N Cores added at any time",
		Protects:    []string{"a failed balancer box", "a failed DB box", "any Cores but the last", "a failed NIC (with a bond)", "a hung daemon (watchdog)"},
		NotProtects: []string{"losing both boxes of one pair"},
	},
}

// ProfileNames lists the known profiles, sorted.
func ProfileNames() string {
	ns := make([]string, 0, len(Profiles))
	for n := range Profiles {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return strings.Join(ns, ", ")
}

// checkProfile explains what the chosen layout requires of this box.
// A requirement whose section is absent points at node.profile's line.
func (c *Config) checkProfile(add func(path, format string, args ...any)) {
	p, ok := Profiles[c.Node.Profile]
	if !ok {
		add("node.profile", "unknown profile %q (known: %s)", c.Node.Profile, ProfileNames())
		return
	}
	edge := c.SIP != nil
	if !edge && !p.HasDB {
		add("sip", "profile %s needs a sip: section (%s)", p.Name, p.Summary)
		return
	}
	needPeer := (edge && p.EdgeNeedsPeer) || (!edge && p.DBNeedsPeer)
	box := "an edge box"
	if !edge {
		box = "a DB box"
	}
	switch {
	case needPeer && (c.Cluster == nil || c.Cluster.Peer == ""):
		add("cluster.peer", "profile %s: %s has a peer box; set cluster.peer (%s)", p.Name, box, p.Summary)
	case !needPeer && c.Cluster != nil:
		add("cluster", "profile %s: %s has no peer box; remove cluster: or choose a redundant profile", p.Name, box)
	}
	if needPeer && len(c.VIPs) == 0 {
		add("vips", "profile %s: %s shares a virtual IP with its peer; add a vips: entry", p.Name, box)
	}
	if !edge && needPeer {
		for i, v := range c.VIPs {
			hasTCP := false
			for _, t := range v.Track {
				hasTCP = hasTCP || t.TCP != "" || t.MySQL != nil
			}
			if !hasTCP {
				add(fmt.Sprintf("vips[%d].track", i), "a DB box's VIP should track its database: add {mysql: {address: \"127.0.0.1:3306\", user: ..., password_file: ...}} or {tcp: \"127.0.0.1:3306\"}")
			}
		}
	}
}
