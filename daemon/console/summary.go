package console

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sipedge/sipedge/daemon/failover"
	"github.com/sipedge/sipedge/daemon/replica"
	"github.com/sipedge/sipedge/daemon/timesync"
)

// The status screen's sections as an operator reads them: a few lines
// each, figures that matter first, zero counters left out. A section
// this file does not know is flattened (its nonzero values only).

// summarizers render the sections by name, in this order.
var summarizers = []struct {
	name string
	fn   func(b *strings.Builder, raw json.RawMessage) error
}{
	{"sip", sumSIP},
	{"vip", sumVIP},
	{"replica", sumReplica},
	{"edge", sumEdge},
	{"network", sumNetwork},
	{timesync.MethodTime, sumTime},
	{"watchdog", sumWatchdog},
}

func sumSIP(b *strings.Builder, raw json.RawMessage) error {
	var s struct {
		Algorithm string   `json:"algorithm"`
		Listen    []string `json:"listen"`
		Dialogs   int      `json:"dialogs"`
		Cores     []struct {
			Name      string  `json:"name"`
			Address   string  `json:"address"`
			State     string  `json:"state"`
			Calls     int64   `json:"calls"`
			MaxCalls  int     `json:"max_calls"`
			LatencyMS float64 `json:"latency_ms"`
		} `json:"cores"`
		Stats map[string]uint64 `json:"stats"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	up, calls := 0, int64(0)
	for _, c := range s.Cores {
		if c.State == "active" || c.State == "trying" {
			up++
		}
		calls += c.Calls
	}
	fmt.Fprintf(b, "SIP balancer (%s) on %s\n", s.Algorithm, strings.Join(s.Listen, ", "))
	fmt.Fprintf(b, "  calls up %d, dialogs %d; Cores %d of %d up\n", calls, s.Dialogs, up, len(s.Cores))
	for _, c := range s.Cores {
		max := "no cap"
		if c.MaxCalls > 0 {
			max = fmt.Sprintf("max %d", c.MaxCalls)
		}
		fmt.Fprintf(b, "  %-10s %-21s %-9s %5d calls (%s), probe %.1f ms\n", c.Name, c.Address, c.State, c.Calls, max, c.LatencyMS)
	}
	st := s.Stats
	fmt.Fprintf(b, "  since start: %d calls routed, %d answered, %d failed over to another Core\n", st["calls"], st["answered"], st["failovers"])
	fmt.Fprintf(b, "  answers to callers: %d 4xx, %d 5xx (%d of them 503), %d 6xx\n", st["replies_4xx"], st["replies_5xx"], st["replies_503"], st["replies_6xx"])
	nonzero(b, "  trouble: ", st, "no_core", "shed", "queue_drops", "malformed", "too_large", "panics", "send_errors", "attempt_timeouts", "dialogs_expired")
	return nil
}

// nonzero prints the named counters that are not zero, on one line.
func nonzero(b *strings.Builder, prefix string, m map[string]uint64, keys ...string) {
	var parts []string
	for _, k := range keys {
		if m[k] != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", strings.ReplaceAll(k, "_", " "), m[k]))
		}
	}
	if len(parts) > 0 {
		fmt.Fprintf(b, "%s%s\n", prefix, strings.Join(parts, ", "))
	}
}

func sumVIP(b *strings.Builder, raw json.RawMessage) error {
	var s failover.Status
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	for _, g := range s.Groups {
		holder := g.Holder
		if holder == "" {
			holder = "nobody"
		}
		fmt.Fprintf(b, "VIP %s %s (%s): %s since %s, held by %s\n", g.Name, g.Address, g.Role, strings.ToUpper(g.State),
			g.Since.Local().Format("15:04:05"), holder)
		for _, p := range g.Peers {
			alive := "alive"
			if !p.Alive {
				alive = "NOT heard"
			}
			fmt.Fprintf(b, "  peer %s %s, %s, last heard %s ago\n", p.Node, alive, p.State, p.LastHeard.Round(time.Millisecond))
		}
		for _, c := range g.Checks {
			if !c.OK {
				fmt.Fprintf(b, "  check %s FAILING: %s\n", c.Check, c.Error)
			}
		}
		if g.Error != "" {
			fmt.Fprintf(b, "  last error: %s\n", g.Error)
		}
	}
	if len(s.Groups) == 0 {
		b.WriteString("VIP: none\n")
	}
	nonzero(b, "  heartbeats rejected: ", s.Rejected, sortedKeys(s.Rejected)...)
	return nil
}

func sumReplica(b *strings.Builder, raw json.RawMessage) error {
	var r replica.Status
	if err := json.Unmarshal(raw, &r); err != nil {
		return err
	}
	conn := "NOT connected"
	if r.Connected {
		conn = "connected to " + r.PeerNode
	}
	fmt.Fprintf(b, "Hot standby: %s, %s, lag %.1f ms, %d dialogs\n", r.Role, conn, r.LagMS, r.Dialogs)
	return nil
}

func sumEdge(b *strings.Builder, raw json.RawMessage) error {
	var e struct {
		Counts    map[string]uint64 `json:"counts"`
		SaveError string            `json:"save_error"`
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		return err
	}
	fmt.Fprintf(b, "Edge: %d sources banned now\n", e.Counts["bans"])
	keys := slices.DeleteFunc(sortedKeys(e.Counts), func(k string) bool { return k == "bans" })
	nonzero(b, "  ", e.Counts, keys...)
	if e.SaveError != "" {
		fmt.Fprintf(b, "  bans NOT SAVED: %s\n", e.SaveError)
	}
	return nil
}

func sumNetwork(b *strings.Builder, raw json.RawMessage) error {
	var n struct {
		Bonds []struct {
			Name, Mode, MIIMon string
			Up                 bool
			ActiveSlave        string `json:"active_slave"`
			Slaves             []struct {
				Name   string `json:"name"`
				MIIUp  bool   `json:"mii_up"`
				Active bool   `json:"active"`
			} `json:"slaves"`
		} `json:"bonds"`
		Links []struct {
			Name   string `json:"name"`
			OperUp bool   `json:"oper_up"`
		} `json:"links"`
		Management *struct {
			Interface, Address, Gateway, Source, Error string
			Pending                                    *struct{ Interface, Address, Gateway, Note string }
		} `json:"management"`
		Routes []struct{ Interface, Gateway string } `json:"default_routes"`
		DNS    *struct {
			Servers    []string `json:"servers"`
			ResolvConf string   `json:"resolv_conf"`
			Written    []string `json:"written"`
			Error      string   `json:"error"`
		} `json:"dns"`
		Errors []string `json:"errors"`
	}
	if err := json.Unmarshal(raw, &n); err != nil {
		return err
	}
	links := make([]named, 0, len(n.Links))
	for _, l := range n.Links {
		links = append(links, named{l.Name, l.OperUp})
	}
	fmt.Fprintf(b, "Network: links %s\n", states(links, "up", "DOWN"))
	for _, bd := range n.Bonds {
		state, active := "up", "active slave "+bd.ActiveSlave
		if !bd.Up {
			state = "DOWN"
		}
		if bd.ActiveSlave == "" {
			active = "no active slave"
		}
		fmt.Fprintf(b, "  bond %s %s, miimon %s, %s, %s\n", bd.Name, bd.Mode, bd.MIIMon, state, active)
		for _, sl := range bd.Slaves {
			mii, role := "MII up", "standby"
			if !sl.MIIUp {
				mii = "MII DOWN"
			}
			if sl.Active {
				role = "active"
			}
			fmt.Fprintf(b, "    slave %s %s, %s\n", sl.Name, mii, role)
		}
	}
	if m := n.Management; m != nil {
		gw := ""
		if m.Gateway != "" {
			gw = ", gateway " + m.Gateway
		}
		src := "config file"
		if m.Source == "runtime" {
			src = "set at runtime"
		}
		fmt.Fprintf(b, "  management %s on %s%s (%s)\n", m.Address, orNone(m.Interface), gw, src)
		if m.Error != "" {
			fmt.Fprintf(b, "    error: %s\n", m.Error)
		}
		if p := m.Pending; p != nil {
			gw := ""
			if p.Gateway != "" {
				gw = ", gateway " + p.Gateway
			}
			fmt.Fprintf(b, "    pending: %s on %s%s\n      %s\n", p.Address, orNone(p.Interface), gw, p.Note)
		}
	}
	for _, r := range n.Routes {
		fmt.Fprintf(b, "  default route via %s on %s\n", r.Gateway, r.Interface)
	}
	if d := n.DNS; d != nil {
		fmt.Fprintf(b, "  DNS %s", listOrNone(d.Servers))
		switch {
		case d.Error != "":
			fmt.Fprintf(b, " (%s: %s)", d.ResolvConf, d.Error)
		case d.ResolvConf != "":
			fmt.Fprintf(b, " (%s names %s)", d.ResolvConf, listOrNone(d.Written))
		}
		b.WriteString("\n")
	}
	for _, e := range n.Errors {
		fmt.Fprintf(b, "  error: %s\n", e)
	}
	return nil
}

// listOrNone joins s with commas, "none" when empty.
func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func sumTime(b *strings.Builder, raw json.RawMessage) error {
	var st timesync.Status
	if err := json.Unmarshal(raw, &st); err != nil {
		return err
	}
	switch {
	case len(st.Servers) == 0:
		b.WriteString("Time: no time servers configured\n")
		return nil
	case st.Synced:
		fmt.Fprintf(b, "Time: synchronised to %s (stratum %d), offset %s\n", st.Server, st.Stratum, st.Offset)
	default:
		fmt.Fprintf(b, "Time: NOT synchronised (%s)\n", st.LastError)
	}
	fmt.Fprintf(b, "  since start: %d polls, %d clock steps, %d slews, %d errors\n", st.Polls, st.Steps, st.Slews, st.Errors)
	return nil
}

func sumWatchdog(b *strings.Builder, raw json.RawMessage) error {
	var w struct {
		Device  string `json:"device"`
		Armed   bool   `json:"armed"`
		Timeout string `json:"timeout"`
		Ago     string `json:"last_keepalive_ago"`
		Reset   bool   `json:"last_reset_by_watchdog"`
		Error   string `json:"error"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return err
	}
	switch {
	case w.Device == "":
		b.WriteString("Watchdog: none configured\n")
	case w.Armed:
		fmt.Fprintf(b, "Watchdog: %s armed, timeout %s, last keepalive %s ago\n", w.Device, w.Timeout, w.Ago)
	default:
		fmt.Fprintf(b, "Watchdog: %s NOT armed\n", w.Device)
	}
	if w.Reset {
		b.WriteString("  the last reset was the watchdog's\n")
	} else if w.Device != "" {
		b.WriteString("  the last reset was not the watchdog's\n")
	}
	if w.Error != "" {
		fmt.Fprintf(b, "  error: %s\n", w.Error)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// named is a thing with a name that is fine or not (a link, a subsystem).
type named struct {
	name string
	ok   bool
}

// states lists each item as "name good" or "name bad", comma-separated.
func states(items []named, good, bad string) string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		st := good
		if !it.ok {
			st = bad
		}
		out = append(out, it.name+" "+st)
	}
	return strings.Join(out, ", ")
}
