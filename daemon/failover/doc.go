// Package failover moves virtual IP addresses between the two boxes of a
// sipedge pair.
//
// Each box sends authenticated heartbeats (UDP unicast, HMAC-SHA256 over a
// shared key) to its peer; replay is refused by per-boot sessions (a
// random boot id the peer must echo, a sequence per boot), never by the
// wall clock (session.go).
// For every VIP group the Manager runs a small state machine (init,
// backup, master, fault) that decides, from the heartbeats it hears, the
// health checks it runs and the operator's commands, which box holds the
// address. Taking a VIP adds it to the interface and announces it with
// gratuitous ARP (a burst, then a repeat); releasing removes it. Handover
// on failback and on a clean stop is ordered: the holder removes the
// address first, tells the peer at once, and the peer takes it without
// waiting for the deadtime, so the two boxes never hold it together.
//
// The package does its system work through hal (addresses, links,
// announcements) and reports through small interfaces (Events, metrics),
// so the daemon wires it and tests drive it with a fake clock and a fake
// HAL.
package failover
