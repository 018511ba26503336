// Package pair is the pair summary: what each box of a pair tells the
// other about itself (version, role, Cores, calls, replication lag), how
// it travels (bounded bytes inside the authenticated heartbeats, see
// daemon/failover), and the side-by-side view of both boxes that the web
// page, `sipedge ctl pair` and the console banner show.
package pair

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode"

	"github.com/sipedge/sipedge/daemon/failover"
)

// MethodPair is the control method (ctl, web page, console) that returns
// the View.
const MethodPair = "pair"

// MaxBytes bounds an encoded Summary (what a heartbeat can carry).
const MaxBytes = failover.MaxSummary

// Summary is one box's account of itself, as sent to the peer. The JSON
// names are short: it travels in every heartbeat.
type Summary struct {
	Version string `json:"v"`
	Profile string `json:"p,omitempty"`
	// Kind: "edge" (SIP balancer) or "db" (no sip: section).
	Kind string `json:"k,omitempty"`
	// Calls: calls up through this box's balancer (sum over its Cores).
	Calls int64 `json:"c"`
	// CoresUp / CoresTotal count the Core pool; Cores lists the first
	// ones that fit (Omitted says how many did not).
	CoresUp    int    `json:"cu"`
	CoresTotal int    `json:"ct"`
	Cores      []Core `json:"cs,omitempty"`
	Omitted    int    `json:"co,omitempty"`
	// Replica: "active" or "standby" when hot standby is on; LagMS its
	// replication lag.
	Replica   string  `json:"r,omitempty"`
	Connected bool    `json:"rc,omitempty"`
	LagMS     float64 `json:"rl,omitempty"`
	// Uptime of the daemon, whole seconds.
	Uptime int64 `json:"u"`
}

// Core is one Core server in a Summary.
type Core struct {
	Name      string  `json:"n"`
	State     string  `json:"s"`
	Calls     int64   `json:"c"`
	LatencyMS float64 `json:"l"`
}

// Encode returns s as the bytes a heartbeat carries: Cores are left out
// from the end (counted in Omitted) until it fits MaxBytes.
func Encode(s Summary) ([]byte, error) {
	for {
		b, err := json.Marshal(s)
		if err != nil {
			return nil, fmt.Errorf("pair summary: %w", err)
		}
		if len(b) <= MaxBytes {
			return b, nil
		}
		if len(s.Cores) == 0 {
			return nil, fmt.Errorf("pair summary: %d bytes without any Core, at most %d", len(b), MaxBytes)
		}
		s.Cores = s.Cores[:len(s.Cores)-1]
		s.Omitted++
	}
}

// Decode parses a peer's summary (already authenticated by the
// heartbeat's MAC, and bounded by the wire format).
func Decode(b []byte) (Summary, error) {
	var s Summary
	if len(b) > MaxBytes {
		return s, fmt.Errorf("pair summary: %d bytes, at most %d", len(b), MaxBytes)
	}
	if len(b) == 0 {
		return s, errors.New("pair summary: empty")
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("pair summary: %w", err)
	}
	s.Version, s.Profile, s.Kind, s.Replica = Printable(s.Version), Printable(s.Profile), Printable(s.Kind), Printable(s.Replica)
	for i := range s.Cores {
		s.Cores[i].Name, s.Cores[i].State = Printable(s.Cores[i].Name), Printable(s.Cores[i].State)
	}
	return s, nil
}

// maxText bounds a string from the peer as the views show it.
const maxText = 64

// Printable is s as a view may show it: control and other non-printable
// characters (a terminal escape sequence from the peer, say) become '?',
// and at most 64 characters are kept.
func Printable(s string) string {
	r := []rune(s)
	if len(r) > maxText {
		r = r[:maxText]
	}
	for i, c := range r {
		if !unicode.IsPrint(c) {
			r[i] = '?'
		}
	}
	return string(r)
}

// View is both boxes side by side: this box first, then its peer(s).
type View struct {
	Boxes []Box `json:"boxes"`
}

// Box is one box of the pair as the view shows it.
type Box struct {
	Node string `json:"node"`
	// Self: this box (the one answering).
	Self bool `json:"self"`
	// Address: the peer's heartbeat address when it was never heard.
	Address string `json:"address,omitempty"`
	// Role: main or backup (the VIP groups' roles, joined when they
	// differ).
	Role   string  `json:"role"`
	Groups []Group `json:"groups"`
	// Summary is what the box says of itself; nil for a peer of an
	// earlier release (it sends none) or one never heard.
	Summary *Summary `json:"summary,omitempty"`
	// SummaryError: the peer's summary could not be read.
	SummaryError string `json:"summary_error,omitempty"`
	// LastHeard: for the peer, its last heartbeat (this box's clock).
	LastHeard *time.Time `json:"last_heard,omitempty"`
	// LastHeardAgo: how long ago, whole milliseconds.
	LastHeardAgoMS int64 `json:"last_heard_ago_ms,omitempty"`
	// Reachable: the peer is heard within the deadtime.
	Reachable bool `json:"reachable"`
	// UnreachableSince: when the peer was last heard (or this box
	// started, if never); set only when it is not reachable.
	UnreachableSince *time.Time `json:"unreachable_since,omitempty"`
	Stopped          bool       `json:"stopped,omitempty"`
	// Session: how its heartbeats are checked ("session",
	// "previous-release", "unproven").
	Session string `json:"session,omitempty"`
}

// Group is one VIP group on one box.
type Group struct {
	Name  string `json:"name"`
	Role  string `json:"role"`
	State string `json:"state"`
	// Holder: who holds the VIP as this box knows it ("" none).
	Holder string `json:"holder"`
}

// Build assembles the view from this box's summary and VIP status and
// what the failover knows of the peers.
func Build(self Summary, st failover.Status, peers []failover.PairPeer) View {
	me := Box{Node: st.Node, Self: true, Reachable: true, Summary: &self, Groups: []Group{}}
	holders := map[string]string{}
	var roles []string
	for _, g := range st.Groups {
		me.Groups = append(me.Groups, Group{Name: g.Name, Role: g.Role, State: g.State, Holder: g.Holder})
		holders[g.Name] = g.Holder
		roles = appendNew(roles, g.Role)
	}
	me.Role = joinRoles(roles)
	v := View{Boxes: []Box{me}}
	for _, p := range peers {
		b := Box{Node: Printable(p.Node), Address: p.Address, Reachable: p.Alive, UnreachableSince: p.UnreachableSince,
			Stopped: p.Stopped, Session: p.Session, Groups: []Group{}}
		if !p.LastHeard.IsZero() {
			t := p.LastHeard
			b.LastHeard, b.LastHeardAgoMS = &t, p.Ago.Milliseconds()
		}
		var roles []string
		for _, g := range p.Groups {
			role := string(failover.RoleBackup)
			if g.Main {
				role = string(failover.RoleMain)
			}
			roles = appendNew(roles, role)
			b.Groups = append(b.Groups, Group{Name: Printable(g.Name), Role: role, State: g.State, Holder: Printable(holders[g.Name])})
		}
		b.Role = joinRoles(roles)
		if len(p.Summary) > 0 {
			s, err := Decode(p.Summary)
			if err != nil {
				b.SummaryError = err.Error()
			} else {
				b.Summary = &s
			}
		}
		v.Boxes = append(v.Boxes, b)
	}
	return v
}

func appendNew(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

func joinRoles(r []string) string {
	switch len(r) {
	case 0:
		return "-"
	case 1:
		return r[0]
	}
	out := r[0]
	for _, x := range r[1:] {
		out += "/" + x
	}
	return out
}
