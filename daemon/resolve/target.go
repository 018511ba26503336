package resolve

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Target is one address a name resolved to.
type Target struct {
	Addr netip.AddrPort
	// Priority and Weight are the SRV record's (RFC 2782): the lowest
	// priority is preferred, the weight is the share within a priority.
	// Without SRV: 0 and 1.
	Priority uint16
	Weight   uint16
	// Host is the SRV target host name (lower case, no trailing dot);
	// without SRV, the name looked up.
	Host string
	// TTL is the smallest TTL of the records that gave this address.
	TTL time.Duration
}

func (t Target) String() string {
	return fmt.Sprintf("%s (host %s, priority %d, weight %d)", t.Addr, t.Host, t.Priority, t.Weight)
}

// Result is what a Lookup found.
type Result struct {
	Name      string // the name looked up, as given
	Transport string // udp, tcp or tls
	// Targets are sorted: priority ascending, weight descending, then
	// host and address.
	Targets []Target
	// TTL is the smallest TTL of every record used (0 for an IP literal):
	// the answer is good for this long.
	TTL time.Duration
	// SRV tells whether the targets came from SRV records.
	SRV bool
	// Literal tells that the name was an IP address: nothing was asked.
	Literal bool
}

func compareTargets(a, b Target) int {
	if c := cmp.Compare(a.Priority, b.Priority); c != 0 {
		return c
	}
	if c := cmp.Compare(b.Weight, a.Weight); c != 0 {
		return c
	}
	if c := strings.Compare(a.Host, b.Host); c != 0 {
		return c
	}
	return a.Addr.Compare(b.Addr)
}

func sortTargets(ts []Target) { slices.SortFunc(ts, compareTargets) }

// SameTargets reports whether a and b name the same addresses with the
// same priorities, weights and hosts, in any order. TTLs are not
// compared: a caching server counts them down between two answers.
func SameTargets(a, b []Target) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	sortTargets(a)
	sortTargets(b)
	for i := range a {
		if compareTargets(a[i], b[i]) != 0 {
			return false
		}
	}
	return true
}
