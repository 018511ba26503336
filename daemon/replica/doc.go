// Package replica is the hot-standby channel between the two edge boxes.
//
// The box that holds the SIP VIP (active) streams every change of its
// balancer's dialog table (create, confirm, end) and its Core pool
// (configuration, administrative state, health) to the peer (standby),
// which applies them to its own balancer so that after a takeover it
// routes the calls already up and counts them on the right Cores.
//
// The channel is one TCP connection dialled by the active box to the
// standby's replication address. The standby accepts it only from the
// configured peer's address, holds at most one connection that has not
// proven the key beside its session, and bounds every length before it
// allocates (gate.go). Both ends prove they hold the cluster key (the
// heartbeats' key) in a handshake with fresh nonces; every frame after it
// carries a sequence number and an HMAC-SHA256 under a per session, per
// direction key, so frames cannot be forged, replayed, reordered or
// reflected; nothing depends on the two clocks agreeing. Dialog events
// are batched (a few milliseconds or a full frame, whichever first); on
// every (re)connect the standby is resynchronised with a snapshot of the
// Core pool and the dialog table, and events captured while the snapshot
// was taken are replayed over it (applying is idempotent). Dialog tags
// and next hops travel only to a peer whose hello says it reads them, so
// a box pairs with one on the previous release in either role. The
// standby acknowledges each frame; the active box measures lag from the
// acknowledgements.
package replica
