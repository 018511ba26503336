// Package streamload is a SIP load generator over TCP and TLS, for the
// bench's stream rows (SIPp as packaged by Debian has no TLS).
//
// It owns its connections (net and crypto/tls) and frames the byte
// stream itself (headers up to the blank line, then Content-Length);
// messages it receives are parsed with sipgo's sip package; requests are
// written from byte templates, as sipgo's message building would cost
// more than the balancer under test on the same host.
//
// Three modes, each bounded in count and time:
//
//   - RunCaller: N long-lived connections carry calls (INVITE, 100/180,
//     200, ACK, a short hold, BYE, 200) at a target total rate, with a
//     per-call timeout; responses are matched by Call-ID and CSeq.
//     Reports per-second attempted/succeeded/failed, totals, latency
//     percentiles, and whether the generator itself was the limit (it
//     fell behind its schedule, or its own CPU was saturated).
//   - RunHandshakes: new connections at a target rate, each a full TLS
//     handshake (no session resumption) and one OPTIONS transaction
//     (any final response counts), then closed.
//   - RunIdle: K connections opened (spread over source addresses, e.g.
//     127.0.0.2.. on loopback, when a proxy caps connections per source
//     or one address's ports would not do), each sends one OPTIONS (or a
//     CRLF keepalive) so that the server holds state for it, then held
//     for a while: a Ready callback fires when all are open, so that a
//     caller can read the server's memory; then all are closed.
//
// The package knows nothing of the bench's processes: the bench (or
// scripts/streamcaller) starts the proxy and Cores and reads the proxy's
// CPU and memory around these runs.
package streamload
