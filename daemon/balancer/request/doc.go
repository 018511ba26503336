// Package request is the balancer's one view of a SIP request, in the
// manner of CoreDNS's request package: a Request is backed either by the
// datagram's raw bytes (Scan: the fast paths, no sipgo parse) or by a
// parsed *sip.Request (Parse: the full path), and offers the operations
// the proxy needs whichever backs it: the transaction key, Max-Forwards,
// received/rport for the top Via, our own Route entries, the next hop,
// the message forwarded with our Via and Record-Route, and our own
// responses.
//
// Each rule keeps its raw and its parsed implementation side by side in
// one file (maxforwards.go, via.go, route.go, forward.go, respond.go), so
// that a header rule is changed in one place; FuzzReadingsAgree feeds
// the same bytes to both backings and requires the same decisions and
// the same forwarded message (or a decline by the raw scan).
//
// Scan declines (false) whatever it does not read exactly as sipgo
// would; the caller then takes the full path. Nothing here keeps state
// between requests or does I/O.
package request
