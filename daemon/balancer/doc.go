// Package balancer is sipedge's SIP load balancer: a lean stateful proxy
// that spreads calls from callers over a pool of Core softswitches.
//
// It keeps sipgo as the SIP library (parser, message and header types) but
// runs its own transport loops and its own transaction and dialog tables:
// one reader goroutine per socket hands each message to a fixed pool of
// workers chosen by a hash of the Call-ID (so messages of one call are
// handled in order), transactions and dialogs live in sharded maps, and
// every timer runs on a single timer wheel. Goroutines therefore do not
// grow with the call rate. The commonest messages of a call — a Core's
// responses and the caller's 2xx ACK — are forwarded from a raw scan of
// the datagram without sipgo's parser; new calls are refused 503 at the
// door (admission control) when the workers fall behind, so the calls
// already taken keep completing.
//
// Proxy behaviour follows RFC 3261 section 16: 100 Trying for INVITE,
// retransmission absorption, non-2xx finals to INVITE retransmitted over
// UDP until their ACK (Timer G/H), a downstream 503 answered 500 upstream,
// a late 2xx on an abandoned attempt ACKed and ended with BYE, CANCEL
// forwarded to the pending branch, 408 on Timer B/C expiry, Record-Route
// with ;lr on the listen address a request arrived on, loose routing of
// in-dialog requests, a Via with a unique branch, received/rport on the
// caller's Via (RFC 3581) and Max-Forwards (483).
//
// Around the proxy sit the Core pool (states active, trying, inactive,
// disabled, draining), the selection algorithms (round-robin, weighted,
// least-load, call-hash on a consistent-hash ring), OPTIONS probing with
// hysteresis and a latency EWMA, serial failover within a call attempt,
// and dialog tracking that counts calls per Core.
package balancer
