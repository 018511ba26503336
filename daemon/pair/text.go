package pair

import (
	"fmt"
	"strings"
	"time"
)

// Text renders the view as two columns (this box, then the peer) of at
// most width characters, for `ctl pair` and the console banner. now is
// for "ago" figures.
func Text(v View, now time.Time, width int) string {
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
		case b.Stopped && b.UnreachableSince != nil:
			return "STOPPED " + since(*b.UnreachableSince, now)
		case b.UnreachableSince != nil:
			return "UNREACHABLE since " + since(*b.UnreachableSince, now)
		}
		return "UNREACHABLE"
	})
	add("role", func(b Box) string { return b.Role })
	add("version", func(b Box) string {
		switch {
		case b.Summary != nil:
			return b.Summary.Version
		case b.SummaryError != "":
			return "unreadable summary"
		case b.LastHeard != nil:
			return "earlier release"
		}
		return "-"
	})
	add("profile", func(b Box) string {
		if b.Summary == nil {
			return "-"
		}
		return strings.TrimSpace(b.Summary.Profile + " " + b.Summary.Kind)
	})
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
	add("Cores", func(b Box) string {
		if b.Summary == nil || b.Summary.Kind == "db" {
			return "-"
		}
		return fmt.Sprintf("%d of %d up", b.Summary.CoresUp, b.Summary.CoresTotal)
	})
	add("calls", func(b Box) string {
		if b.Summary == nil || b.Summary.Kind == "db" {
			return "-"
		}
		return fmt.Sprint(b.Summary.Calls)
	})
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
