package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/sipedge/sipedge/daemon/history"
)

// historyCommands are the `ctl history` commands.
func historyCommands() []ctlCommand {
	return []ctlCommand{
		{words: "history", help: "the last hour kept for the charts: per series, now, 10-minute average and peak; VIP events", method: history.MethodHistory, print: printHistory},
	}
}

func printHistory(w io.Writer, raw json.RawMessage) error {
	h, err := decode[history.Snapshot](raw)
	if err != nil {
		return err
	}
	if h.Now == 0 {
		fmt.Fprintln(w, "no samples yet (a box without a balancer keeps only VIP events)")
	} else {
		fmt.Fprintf(w, "%-22s %10s %10s %10s   (last 10 minutes, 1 s samples)\n", "series", "now", "average", "peak")
		for _, n := range h.Names {
			var sum, peak float64
			cnt := 0
			last := math.NaN()
			for _, v := range h.Fine.Series[n] {
				if f := float64(v); !math.IsNaN(f) {
					sum, cnt, last = sum+f, cnt+1, f
					peak = math.Max(peak, f)
				}
			}
			avg := math.NaN()
			if cnt > 0 {
				avg = sum / float64(cnt)
			}
			fmt.Fprintf(w, "%-22s %10.1f %10.1f %10.1f\n", n, last, avg, peak)
		}
	}
	for _, e := range h.Events {
		fmt.Fprintf(w, "%s  VIP %s %s: %s\n", e.Time.UTC().Format(time.DateTime+"Z"), e.Group, e.State, e.Text)
	}
	return nil
}
