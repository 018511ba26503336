package pair

import (
	"fmt"
	"strings"
	"time"
)

// Text renders the view as two columns (this box, then the peer) of at
// most width characters, for `ctl pair`. now is for "ago" figures.
func Text(v View, now time.Time, width int) string { return render(v, now, width, false) }

// Compact is Text in fewer rows (role and version, calls and Cores
// joined; no profile), for the console banner.
func Compact(v View, now time.Time, width int) string { return render(v, now, width, true) }

func render(v View, now time.Time, width int, compact bool) string {
	if len(v.Boxes) == 0 {
		return "pair: no boxes\n"
	}
	const label = 12
	col := max((width-label-1)/max(len(v.Boxes), 1)-1, 12)
	rows := [][]string{}
	add := func(name string, f func(b Box) string) {
		r := []string{name}
		for _, b := range v.Boxes {
			r = append(r, f(b))
		}
		rows = append(rows, r)
	}
	add("box", func(b Box) string {
		n := b.Node
		if n == "" {
			n = b.Address
		}
		if b.Self {
			return n + " (this)"
		}
		return n + " (peer)"
	})
	add("state", func(b Box) string {
		switch {
		case b.Self:
			return "up"
		case b.Reachable:
			return "up"
		case b.UnreachableSince != nil:
			what := "UNREACHABLE since "
			if b.Stopped {
				what = "STOPPED at "
			}
			if compact { // the heartbeat row says how long ago
				return what + b.UnreachableSince.UTC().Format("15:04:05Z")
			}
			return what + since(*b.UnreachableSince, now)
		}
		return "UNREACHABLE"
	})
	if compact {
		add("role", func(b Box) string { return b.Role + ", " + versionOf(b) })
	} else {
		add("role", func(b Box) string { return b.Role })
		add("version", versionOf)
		add("profile", func(b Box) string {
			if b.Summary == nil {
				return "-"
			}
			return strings.TrimSpace(b.Summary.Profile + " " + b.Summary.Kind)
		})
	}
	names := []string{}
	for _, b := range v.Boxes {
		for _, g := range b.Groups {
			names = appendNew(names, g.Name)
		}
	}
	for _, n := range names {
		add("VIP "+n, func(b Box) string {
			for _, g := range b.Groups {
				if g.Name == n {
					if g.Holder != "" {
						return g.State + ", holder " + g.Holder
					}
					return g.State + ", no holder"
				}
			}
			return "-"
		})
	}
	cores := func(b Box) string {
		if b.Summary == nil || b.Summary.Kind == "db" {
			return "-"
		}
		return fmt.Sprintf("%d of %d up", b.Summary.CoresUp, b.Summary.CoresTotal)
	}
	calls := func(b Box) string {
		if b.Summary == nil || b.Summary.Kind == "db" {
			return "-"
		}
		return fmt.Sprint(b.Summary.Calls)
	}
	if compact {
		add("calls", func(b Box) string {
			if calls(b) == "-" {
				return "-"
			}
			return calls(b) + ", Cores " + cores(b)
		})
	} else {
		add("Cores", cores)
		add("calls", calls)
	}
	add("replication", func(b Box) string {
		if b.Summary == nil || b.Summary.Replica == "" {
			return "-"
		}
		if !b.Summary.Connected {
			return b.Summary.Replica + ", NOT connected"
		}
		return fmt.Sprintf("%s, lag %.1f ms", b.Summary.Replica, b.Summary.LagMS)
	})
	add("heartbeat", func(b Box) string {
		switch {
		case b.Self:
			return "-"
		case b.LastHeard == nil:
			return "never heard"
		}
		return ago(time.Duration(b.LastHeardAgoMS)*time.Millisecond) + " ago"
	})
	var s strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&s, "%-*s", label, clip(r[0], label-1))
		for i, c := range r[1:] {
			if i == len(r)-2 {
				s.WriteString(" " + clip(c, col))
			} else {
				fmt.Fprintf(&s, " %-*s", col, clip(c, col))
			}
		}
		s.WriteString("\n")
	}
	return s.String()
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n < 2 {
		return s[:n]
	}
	return s[:n-1] + "~"
}

// since renders t as a UTC clock time and how long ago.
func since(t, now time.Time) string {
	return t.UTC().Format("15:04:05Z") + " (" + ago(now.Sub(t)) + " ago)"
}

func ago(d time.Duration) string {
	switch {
	case d < 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}

func versionOf(b Box) string {
	switch {
	case b.Summary != nil:
		return b.Summary.Version
	case b.SummaryError != "":
		return "unreadable summary"
	case b.LastHeard != nil:
		return "earlier release"
	}
	return "-"
}
