package edge

import "time"

// Ban reasons.
const (
	ReasonFlood = "flood"
)

// MaxStoredBans bounds the bans written to the store (the newest ones):
// a flood from spoofed sources may ban many addresses that are of no
// interest after a restart.
const MaxStoredBans = 4096

// Ban is one source refused until a time.
type Ban struct {
	Source  string    `json:"source"` // IPv4 address or IPv6 /64
	Reason  string    `json:"reason"`
	Since   time.Time `json:"since"`
	Until   time.Time `json:"until"`
	Dropped uint64    `json:"dropped"` // messages dropped since the ban
}

// BanStore keeps the ban table across restarts.
type BanStore interface {
	LoadBans() ([]Ban, error)
	SaveBans([]Ban) error
}
