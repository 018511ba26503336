package failover

import "fmt"

// State is a VIP group's state on one box.
type State uint8

const (
	// StateInit: just started, waiting up to initdead to hear the peer
	// before claiming anything.
	StateInit State = 1
	// StateBackup: does not hold the VIP; takes it when the holder dies,
	// releases it or when this box is the preferred holder and nobody
	// holds it.
	StateBackup State = 2
	// StateMaster: holds the VIP.
	StateMaster State = 3
	// StateFault: a health check that puts the group in fault fails; the
	// box does not hold the VIP and is not a candidate.
	StateFault State = 4
	// StateStopped: the daemon is shutting down (sent in its last
	// heartbeat); never a candidate.
	StateStopped State = 5
)

func (s State) valid() bool { return s >= StateInit && s <= StateStopped }

func (s State) String() string {
	switch s {
	case StateInit:
		return "init"
	case StateBackup:
		return "backup"
	case StateMaster:
		return "master"
	case StateFault:
		return "fault"
	case StateStopped:
		return "stopped"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Role is the configured role of a box for a group. The main is the
// preferred holder at equal priority; failback returns the VIP to it.
type Role string

const (
	RoleMain   Role = "main"
	RoleBackup Role = "backup"
)

// MarshalText renders the state by name (logs, JSON).
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
