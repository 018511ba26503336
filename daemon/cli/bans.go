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

// banCommands are the `ctl bans ...` commands.
func banCommands() []ctlCommand {
	return []ctlCommand{
		{words: "bans", help: "sources banned at the edge (flood), policy and counters", method: "bans", print: printBans},
		{words: "bans clear", args: "[IP]", help: "lift the ban on IP, or every ban", method: "bans.clear", params: clearBanParams, print: printBans},
	}
}

func clearBanParams(a []string) (any, error) {
	switch len(a) {
	case 0:
		return map[string]string{}, nil
	case 1:
		return map[string]string{"source": a[0]}, nil
	}
	return nil, fmt.Errorf("want at most one address, got %d arguments", len(a))
}

func printBans(w io.Writer, raw json.RawMessage) error {
	st, err := decode[app.BansStatus](raw)
	if err != nil {
		return err
	}
	fmt.Fprint(w, FormatBans(st, time.Now()))
	return nil
}

// FormatBans renders `ctl bans`: one row per ban, then the counters.
func FormatBans(st app.BansStatus, now time.Time) string {
	var b strings.Builder
	if st.Cleared != nil {
		fmt.Fprintf(&b, "%d ban(s) lifted\n", *st.Cleared)
	}
	if fl, ok := st.Policy["flood"].(map[string]any); ok {
		fmt.Fprintf(&b, "flood: more than %v requests per %v bans a source for %v; untrusted: %v; trusted: %v\n",
			fl["requests"], fl["per"], fl["ban"], st.Policy["untrusted"], st.Policy["trusted"])
	}
	if len(st.Bans) == 0 {
		b.WriteString("no bans\n")
	} else {
		rows := [][]string{}
		for _, x := range st.Bans {
			rows = append(rows, []string{x.Source, x.Reason, x.Since.Local().Format(time.DateTime),
				x.Until.Sub(now).Round(time.Second).String(), strconv.FormatUint(x.Dropped, 10)})
		}
		table(&b, []string{"SOURCE", "REASON", "SINCE", "LEFT", "DROPPED"}, rows)
	}
	c := st.Counts
	fmt.Fprintf(&b, "bans %d, dropped: banned %d, scanner %d; refused untrusted %d; tracked sources %d (evicted %d)\n",
		c["bans"], c["dropped_banned"], c["dropped_scanner"], c["refused_untrusted"], c["tracked"], c["evicted_sources"])
	if st.SaveError != "" {
		fmt.Fprintf(&b, "warning: bans not saved to the store: %s\n", st.SaveError)
	}
	return b.String()
}
