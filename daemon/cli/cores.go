package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/sipedge/sipedge/daemon/app"
)

// coreCommands are the `ctl cores ...` commands.
func coreCommands() []ctlCommand {
	named := exactly(1, func(a []string) any { return map[string]string{"name": a[0]} })
	return []ctlCommand{
		{words: "cores", also: "list", help: "the Core pool: state, calls, latency per Core", method: "cores", print: printCores},
		{words: "cores add", args: "NAME [udp:|tcp:|tls:]IP:PORT|DNS-NAME [WEIGHT [MAX_CALLS]] [tls_name=NAME]", help: "add a Core, or a DNS name whose targets are Cores (kept in the store)", method: "cores.add", params: addCoreParams, print: printCores},
		{words: "cores remove", args: "NAME", help: "remove a Core; its calls in progress finish", method: "cores.remove", params: named, print: printCores},
		{words: "cores drain", args: "NAME", help: "no new calls to the Core; its calls finish", method: "cores.drain", params: named, print: printCores},
		{words: "cores disable", args: "NAME", help: "no new calls to the Core (administratively down)", method: "cores.disable", params: named, print: printCores},
		{words: "cores enable", args: "NAME", help: "return a drained or disabled Core to service", method: "cores.enable", params: named, print: printCores},
	}
}

func addCoreParams(a []string) (any, error) {
	var pos []string
	p := map[string]any{}
	for _, s := range a {
		if v, ok := strings.CutPrefix(s, "tls_name="); ok {
			p["tls_name"] = v
			continue
		}
		pos = append(pos, s)
	}
	if len(pos) < 2 || len(pos) > 4 {
		return nil, fmt.Errorf("want NAME ADDRESS [WEIGHT [MAX_CALLS]] [tls_name=NAME], got %d argument(s)", len(pos))
	}
	p["name"], p["address"] = pos[0], pos[1]
	for i, key := range []string{"weight", "max_calls"} {
		if len(pos) > 2+i {
			n, err := strconv.Atoi(pos[2+i])
			if err != nil || n < 0 {
				return nil, fmt.Errorf("%s %q: want a number >= 0", key, pos[2+i])
			}
			p[key] = n
		}
	}
	return p, nil
}

func printCores(w io.Writer, raw json.RawMessage) error {
	st, err := decode[app.CoresStatus](raw)
	if err != nil {
		return err
	}
	fmt.Fprint(w, FormatCores(st))
	return nil
}

// FormatCores renders `ctl cores`: one row per Core.
func FormatCores(st app.CoresStatus) string {
	var b strings.Builder
	fmt.Fprintf(&b, "algorithm %s, listening on %s, %d dialogs\n", st.Algorithm, strings.Join(st.Listen, " "), st.Dialogs)
	if len(st.CoreSide) > 0 {
		fmt.Fprintf(&b, "toward the Cores from %s\n", strings.Join(st.CoreSide, " "))
	}
	if len(st.Cores) == 0 {
		b.WriteString("no Cores (sipedge ctl cores add NAME IP:PORT)\n")
	}
	rows := [][]string{}
	for _, c := range st.Cores {
		max := "-"
		if c.MaxCalls > 0 {
			max = strconv.Itoa(c.MaxCalls)
		}
		lat := "-"
		if c.LatencyMS > 0 {
			lat = strconv.FormatFloat(c.LatencyMS, 'f', 1, 64) + "ms"
		}
		probe := "-"
		if c.LastCode > 0 {
			probe = strconv.Itoa(c.LastCode)
		} else if c.LastProbe != "" {
			probe = "timeout"
		}
		rows = append(rows, []string{c.Name, c.Address, strings.ToUpper(string(c.State)), strconv.Itoa(c.Weight), max,
			strconv.FormatInt(c.Calls, 10), strconv.FormatInt(c.Pending, 10), strconv.FormatUint(c.Routed, 10),
			strconv.FormatUint(c.Answered, 10), strconv.FormatUint(c.Failovers, 10), lat, probe})
	}
	if len(rows) > 0 {
		table(&b, []string{"CORE", "ADDRESS", "STATE", "WEIGHT", "MAX", "CALLS", "SETUP", "ROUTED", "ANSWERED", "FAILOVERS", "LATENCY", "PROBE"}, rows)
	}
	for _, g := range st.Groups {
		state := fmt.Sprintf("%d Cores", len(g.Cores))
		switch {
		case g.Dropped:
			state += ", NOT RESOLVING: last answer expired (" + g.LastError + ")"
		case g.Stale:
			state += ", NOT RESOLVING: last good answer of " + g.LastGood.UTC().Format(time.RFC3339) + " kept (" + g.LastError + ")"
		}
		fmt.Fprintf(&b, "%s = %s (DNS): %s\n", g.Name, g.Address, state)
	}
	return b.String()
}
