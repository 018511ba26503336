// Package resolve turns a Core's configured DNS name into addresses, off
// the packet path: RFC 3263 section 4 (SRV, then A/AAAA) without NAPTR,
// over github.com/miekg/dns, with bounded queries and answers.
//
// Lookup resolves a name once. A Watcher keeps one configured name
// resolved in its own goroutine: it re-resolves when the answer's TTL
// runs out (clamped), reports a new target set only when it changed,
// and keeps the last good answer for a bounded stale period when the
// DNS servers fail.
//
// Only names from the configuration file are resolved here. A name that
// arrives on the wire (a host in a Request-URI, Route or Via) must never
// be passed to this package: the balancer routes by addresses and the
// names it was configured with, so that outside input cannot make the
// box send DNS queries or choose where it sends calls.
//
// # Priorities and weights
//
// Each SRV target becomes a Core of one group: the lowest priority value
// is preferred (higher values are used only when every Core of the lower
// ones is down), and within one priority the weight is the Core's share
// of new calls (RFC 2782; a weight of 0 is the smallest share). Every
// address of a target (A and AAAA) is a Target of its own with that
// target's priority, weight and port; addresses found without SRV all
// have priority 0 and weight 1.
package resolve
