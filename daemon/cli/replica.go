package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/sipedge/sipedge/daemon/replica"
)

// replicaCommands are the `ctl replica` commands.
func replicaCommands() []ctlCommand {
	return []ctlCommand{
		{words: "replica", help: "hot standby: role, connected, lag, dialogs mirrored, counters", method: "replica", print: printReplica},
	}
}

func printReplica(w io.Writer, raw json.RawMessage) error {
	st, err := decode[replica.Status](raw)
	if err != nil {
		return err
	}
	fmt.Fprint(w, FormatReplica(st))
	return nil
}

// FormatReplica renders `ctl replica`.
func FormatReplica(st replica.Status) string {
	var b strings.Builder
	what := "mirrors the peer (standby)"
	if st.Role == "active" {
		what = "streams to the peer (holds the SIP VIP)"
	}
	fmt.Fprintf(&b, "role       %s: %s\n", st.Role, what)
	conn := "no"
	if st.Connected {
		conn = "yes, with " + st.PeerNode
		if st.Since != nil {
			conn += " since " + st.Since.Format("2006-01-02 15:04:05Z")
		}
	}
	fmt.Fprintf(&b, "connected  %s (listen %s, peer %s)\n", conn, st.Listen, st.Peer)
	fmt.Fprintf(&b, "lag        %.1f ms", st.LagMS)
	if st.Role == "active" {
		fmt.Fprintf(&b, " (send to ack); %d events pending, %d frames unacknowledged\n", st.Pending, st.Unacked)
	} else {
		b.WriteString(" (frame age at arrival)")
		if st.LastFrameAgo != nil {
			fmt.Fprintf(&b, "; last frame %s ago", st.LastFrameAgo.String())
		}
		b.WriteString("\n")
	}
	label := "dialogs"
	if st.Role != "active" {
		label = "mirrored"
	}
	fmt.Fprintf(&b, "%-10s %d\n", label, st.Dialogs)
	keys := make([]string, 0, len(st.Counters))
	for k, v := range st.Counters {
		if v != 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "  %-20s %d\n", k, st.Counters[k])
	}
	return b.String()
}
