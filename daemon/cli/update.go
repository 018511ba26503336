package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/sipedge/sipedge/daemon/app"
	"github.com/sipedge/sipedge/daemon/update"
)

// updateCommands are the `ctl update ...` commands.
func updateCommands() []ctlCommand {
	return []ctlCommand{
		{words: "update", also: "show", help: "firmware: version, slot (A/B), trial, the last update and how it ended", method: update.MethodStatus, print: printUpdate},
		{words: "update apply", args: "FILE [--force]", help: "verify a signed bundle, write it to the inactive slot, reboot into it once (a VIP holder hands its VIPs over first; --force: a downgrade, or with an unhealthy peer); raise -timeout on a slow disk", method: update.MethodApply, params: applyParams, print: printApplied},
	}
}

func applyParams(args []string) (any, error) {
	var p app.ApplyParams
	for _, a := range args {
		switch {
		case a == "--force" || a == "-force":
			p.Force = true
		case p.File == "":
			abs, err := filepath.Abs(a)
			if err != nil {
				return nil, err
			}
			p.File = abs
		default:
			return nil, fmt.Errorf("unexpected argument %q", a)
		}
	}
	if p.File == "" {
		return nil, errors.New("no bundle file")
	}
	return p, nil
}

func printUpdate(w io.Writer, raw json.RawMessage) error {
	st, err := decode[app.UpdateStatus](raw)
	if err != nil {
		return err
	}
	slot := st.Slot
	if slot == "" {
		slot = "- (not booted from the A/B disk)"
	} else if st.Trial {
		slot += " (trial: not committed yet)"
	}
	fmt.Fprintf(w, "version  %s (%s)\nslot     %s\n", st.Version, st.Describe, slot)
	if st.Available != "" {
		fmt.Fprintf(w, "updates  unavailable: %s\n", st.Available)
	}
	if l := st.Last; l != nil {
		fmt.Fprintf(w, "last     %s -> %s in slot %s: %s", l.From, l.To, l.Slot, l.Phase)
		if l.Reason != "" {
			fmt.Fprintf(w, " (%s)", l.Reason)
		}
		fmt.Fprintln(w)
	}
	return nil
}

func printApplied(w io.Writer, raw json.RawMessage) error {
	r, err := decode[update.Result](raw)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "update %s written to slot %s (%d bytes, checked) in %s: rebooting into its trial\n", r.Version, r.Slot, r.Bytes, r.Took.Round(time.Millisecond))
	return nil
}
