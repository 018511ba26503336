package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sipedge/sipedge/daemon/failover"
)

// vipCommands are the `ctl vip ...` commands.
func vipCommands() []ctlCommand {
	group := exactly(1, func(a []string) any { return map[string]string{"group": a[0]} })
	return []ctlCommand{
		{words: "vip", also: "show", help: "VIP groups: state, holder, peer last heard, time to takeover", method: "vip", print: printVIP},
		{words: "vip check", help: "run the VIP placement check now: is the peer on each VIP's layer-2 segment?", method: failover.MethodVIPCheck, print: printVIP},
		{words: "vip release", args: "GROUP", help: "give the VIP group to the peer (maintenance) until vip auto or vip takeover", method: "vip.release", params: group, print: printVIP},
		{words: "vip takeover", args: "GROUP", help: "take the VIP group from the peer at once and keep it", method: "vip.takeover", params: group, print: printVIP},
		{words: "vip auto", args: "GROUP", help: "end a vip release or vip takeover: back to priority and failback", method: "vip.auto", params: group, print: printVIP},
	}
}

func printVIP(w io.Writer, raw json.RawMessage) error {
	st, err := decode[failover.Status](raw)
	if err != nil {
		return err
	}
	fmt.Fprint(w, FormatVIP(st))
	return nil
}

// FormatVIP renders `ctl vip`: one row per group, then its peers and
// health checks.
func FormatVIP(st failover.Status) string {
	var b strings.Builder
	if len(st.Groups) == 0 {
		b.WriteString("no VIP groups configured\n")
		return b.String()
	}
	rows := [][]string{}
	for _, g := range st.Groups {
		state := strings.ToUpper(g.State)
		switch {
		case g.Held:
			state += " (released by operator)"
		case g.Pinned:
			state += " (taken over by operator)"
		}
		holder := g.Holder
		if holder == "" {
			holder = "-"
		} else if holder == st.Node {
			holder += " (this box)"
		}
		heard := "never"
		var latest *failover.PeerInfo
		for i := range g.Peers {
			if latest == nil || g.Peers[i].LastHeard < latest.LastHeard {
				latest = &g.Peers[i]
			}
		}
		if latest != nil {
			heard = fmtAgo(latest.LastHeard) + " ago"
		}
		takeover := "-"
		if g.TakeoverIn != nil {
			takeover = "in " + fmtAgo(max(*g.TakeoverIn, 0))
			if *g.TakeoverIn <= 0 && g.State == "backup" && g.Holder == "" {
				takeover = "now"
			}
		}
		prio := strconv.Itoa(g.Effective)
		if g.Effective != g.Priority {
			prio += "/" + strconv.Itoa(g.Priority)
		}
		rows = append(rows, []string{g.Name, g.Address, g.Interface, g.Role, state, holder, heard, takeover, prio, fmtAgo(time.Since(g.Since))})
	}
	table(&b, []string{"GROUP", "ADDRESS", "IFACE", "ROLE", "STATE", "HOLDER", "PEER HEARD", "TAKEOVER", "PRIO", "FOR"}, rows)
	for _, g := range st.Groups {
		fmt.Fprintf(&b, "\n%s: %s", g.Name, g.Reason)
		if g.Error != "" {
			fmt.Fprintf(&b, " (last error: %s)", g.Error)
		}
		b.WriteString("\n")
		if pin := pinText(g); pin != "" {
			fmt.Fprintf(&b, "  pin: %s (kept across restarts; `ctl vip auto %s` ends it)\n", pin, g.Name)
		}
		if g.Relaying {
			b.WriteString("  relaying: packets still arriving here for the VIP are forwarded to the new holder\n")
		}
		for _, p := range g.Peers {
			alive := "alive"
			if !p.Alive {
				alive = "dead"
			}
			if p.Session != "" {
				alive += ", " + p.Session
			}
			fmt.Fprintf(&b, "  peer %s: %s, priority %d, heard %s ago (%s)\n", p.Node, p.State, p.Priority, fmtAgo(p.LastHeard), alive)
		}
		if p := g.Placement; p != nil {
			fmt.Fprintf(&b, "  placement: %s\n", placementText(p))
		}
		for _, c := range g.Checks {
			res := "ok"
			if !c.OK {
				res = "FAIL " + c.Error
			}
			effect := "fault"
			if c.Weight > 0 {
				effect = "-" + strconv.Itoa(c.Weight)
			}
			fmt.Fprintf(&b, "  check %s [%s]: %s\n", c.Check, effect, res)
		}
	}
	if len(st.Rejected) > 0 {
		var parts []string
		for r, n := range st.Rejected {
			parts = append(parts, fmt.Sprintf("%s %d", r, n))
		}
		sort.Strings(parts)
		fmt.Fprintf(&b, "\nheartbeats rejected: %s\n", strings.Join(parts, ", "))
	}
	return b.String()
}

// pinText describes the operator's pin on g, or "".
func pinText(g failover.GroupInfo) string {
	var s string
	switch {
	case g.Held:
		s = "released by operator"
	case g.Pinned:
		s = "taken over by operator"
	default:
		return ""
	}
	if g.PinSince != nil && !g.PinSince.IsZero() {
		s += " at " + g.PinSince.Local().Format("2006-01-02 15:04:05") + " (" + fmtAgo(time.Since(*g.PinSince)) + " ago)"
	}
	return s
}

// fmtAgo renders a duration for people: 850ms, 3.2s, 4m10s.
func fmtAgo(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

// placementText renders a VIP placement check for `ctl vip`.
func placementText(p *failover.PlacementInfo) string {
	if !p.OK {
		return "WARNING " + strings.Join(p.Findings, "; ") + " (checked " + fmtAgo(time.Since(p.Checked)) + " ago)"
	}
	s := "ok"
	if p.PeerAddress != "" {
		s += ", peer " + p.PeerAddress + " answers ARP from " + p.PeerMAC
	}
	if len(p.Findings) > 0 {
		s += " (" + strings.Join(p.Findings, "; ") + ")"
	}
	return s + " (checked " + fmtAgo(time.Since(p.Checked)) + " ago)"
}
