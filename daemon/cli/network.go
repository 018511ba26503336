package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/sipedge/sipedge/daemon/app"
)

// networkCommands are `ctl network` and `ctl watchdog`.
func networkCommands() []ctlCommand {
	return []ctlCommand{
		{words: "network", help: "bonds (mode, active slave, slaves' MII state), links, management address, default route, watchdog", method: "network", print: printNetwork},
		{words: "watchdog", help: "watchdog: armed, timeout, last keepalive, last reset by the watchdog", method: "watchdog", print: printWatchdog},
	}
}

// networkResult is the "network" method's answer.
type networkResult struct {
	app.NetworkStatus
	Watchdog *app.WatchdogView `json:"watchdog"`
}

func printNetwork(w io.Writer, raw json.RawMessage) error {
	r, err := decode[networkResult](raw)
	if err != nil {
		return err
	}
	fmt.Fprint(w, FormatNetwork(r.NetworkStatus, r.Watchdog))
	return nil
}

func printWatchdog(w io.Writer, raw json.RawMessage) error {
	v, err := decode[app.WatchdogView](raw)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, FormatWatchdog(v))
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func upDown(b bool) string {
	if b {
		return "up"
	}
	return "down"
}

// FormatNetwork renders `ctl network`.
func FormatNetwork(st app.NetworkStatus, wd *app.WatchdogView) string {
	var b strings.Builder
	if len(st.Bonds) == 0 {
		b.WriteString("no bonds configured\n")
	} else {
		var rows [][]string
		for _, bd := range st.Bonds {
			var sl []string
			for _, s := range bd.Slaves {
				x := s.Name + " mii " + upDown(s.MIIUp)
				if s.Active {
					x += " (active)"
				}
				sl = append(sl, x)
			}
			active := bd.ActiveSlave
			if active == "" {
				active = "-"
			}
			rows = append(rows, []string{bd.Name, bd.Mode, bd.MIIMon, upDown(bd.Up), active, strings.Join(sl, ", ")})
		}
		table(&b, []string{"BOND", "MODE", "MIIMON", "STATE", "ACTIVE", "SLAVES"}, rows)
	}
	if len(st.Links) > 0 {
		b.WriteString("\n")
		var rows [][]string
		for _, l := range st.Links {
			rows = append(rows, []string{l.Name, upDown(l.AdminUp), upDown(l.OperUp), strconv.Itoa(l.MTU), l.MAC})
		}
		table(&b, []string{"LINK", "ADMIN", "OPER", "MTU", "MAC"}, rows)
	}
	b.WriteString("\n")
	if m := st.Management; m != nil && m.Address != "" {
		fmt.Fprintf(&b, "management  %s on %s", m.Address, m.Interface)
		if m.Gateway != "" {
			fmt.Fprintf(&b, " via %s", m.Gateway)
		}
		fmt.Fprintf(&b, " (from the %s)\n", m.Source)
	} else {
		b.WriteString("management  not configured\n")
	}
	if m := st.Management; m != nil {
		if m.Error != "" {
			fmt.Fprintf(&b, "  problem: %s\n", m.Error)
		}
		if p := m.Pending; p != nil {
			fmt.Fprintf(&b, "  pending: %s on %s", p.Address, p.Interface)
			if p.Gateway != "" {
				fmt.Fprintf(&b, " via %s", p.Gateway)
			}
			fmt.Fprintf(&b, ", %s\n", p.Note)
		}
	}
	if len(st.DefaultRoutes) == 0 {
		b.WriteString("default     none\n")
	}
	for _, r := range st.DefaultRoutes {
		fmt.Fprintf(&b, "default     via %s dev %s\n", r.Gateway, r.Interface)
	}
	for _, e := range st.Errors {
		fmt.Fprintf(&b, "error       %s\n", e)
	}
	if wd != nil {
		fmt.Fprintf(&b, "\n%s\n", FormatWatchdog(*wd))
	}
	return b.String()
}

// FormatWatchdog renders the watchdog state on a few lines.
func FormatWatchdog(v app.WatchdogView) string {
	if v.Device == "" {
		return "watchdog    none configured"
	}
	var b strings.Builder
	state := "NOT ARMED"
	if v.Armed {
		state = "armed"
	}
	fmt.Fprintf(&b, "watchdog    %s %s", v.Device, state)
	if v.Timeout != "" {
		fmt.Fprintf(&b, ", timeout %s", v.Timeout)
	}
	if v.LastKeepaliveAgo != "" {
		fmt.Fprintf(&b, ", last keepalive %s ago (%d in all)", v.LastKeepaliveAgo, v.Keepalives)
	}
	fmt.Fprintf(&b, "\n            last reset by the watchdog: %s", yesNo(v.LastResetByWatchdog))
	if v.Withholding {
		fmt.Fprintf(&b, "\n            WITHHOLDING keepalives, stale: %s", strings.Join(v.Stale, ", "))
	}
	if v.Error != "" {
		fmt.Fprintf(&b, "\n            error: %s", v.Error)
	}
	return b.String()
}
