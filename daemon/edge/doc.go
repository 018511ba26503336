// Package edge screens what reaches the SIP balancer from the wire,
// before any parsing or transaction state: source ACLs (trusted networks
// by CIDR and transport; everyone else allowed or refused with 403), a
// per-source request-rate flood detector with an expiring ban table,
// and a silent drop of known scanners' User-Agents.
//
// It is built for a hostile internet: the hot path is a prefix match,
// one sharded map lookup and, for untrusted requests only, one scan of
// the header lines; the tracked sources and the bans are capped and
// evicted, so a flood from spoofed addresses cannot grow memory. Bans are
// handed to a BanStore (the daemon's bbolt store) so they survive a
// restart, and are listed and cleared by the operator (ctl, web page).
package edge
