package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/sipedge/sipedge/daemon/timesync"
)

// timeCommands are the `ctl time` commands.
func timeCommands() []ctlCommand {
	return []ctlCommand{
		{words: "time", help: "time sync (SNTP): servers, synced, offset, last sync, stratum, error", method: timesync.MethodTime, print: printTime},
	}
}

func printTime(w io.Writer, raw json.RawMessage) error {
	st, err := decode[timesync.Status](raw)
	if err != nil {
		return err
	}
	fmt.Fprint(w, FormatTime(st))
	return nil
}

// FormatTime renders `ctl time`.
func FormatTime(st timesync.Status) string {
	var b strings.Builder
	if len(st.Servers) == 0 {
		return "time sync: off (no time.ntp servers configured)\n"
	}
	mode := "corrects the clock (step above the threshold, else slew)"
	if !st.Adjust {
		mode = "measures only (time.adjust: false)"
	}
	fmt.Fprintf(&b, "servers    %s; %s\n", strings.Join(st.Servers, ", "), mode)
	sync := "NO"
	if st.Synced {
		sync = "yes"
	}
	fmt.Fprintf(&b, "synced     %s\n", sync)
	if st.LastSync != nil {
		fmt.Fprintf(&b, "last sync  %s (%s ago) from %s, stratum %d\n", st.LastSync.UTC().Format("2006-01-02 15:04:05Z"), st.LastSyncAgo, st.Server, st.Stratum)
		fmt.Fprintf(&b, "offset     %s (round trip %s), %s\n", st.Offset, st.RTT, st.LastAction)
	}
	fmt.Fprintf(&b, "polls      %d, steps %d, slews %d, errors %d\n", st.Polls, st.Steps, st.Slews, st.Errors)
	if st.LastError != "" {
		fmt.Fprintf(&b, "last error %s\n", st.LastError)
	}
	return b.String()
}
