// Package tlsconf is the TLS material of SIP over TLS: the balancer's
// server side toward callers and carriers, and its client side toward
// the Cores. It uses crypto/tls and crypto/x509 only.
//
// A Store holds the server certificates (chosen by SNI), the CA that
// client certificates must chain to and the verification mode; its
// ServerConfig is handed to the TLS listeners once, and Reload (the
// daemon calls it on SIGHUP) swaps new material in for the handshakes
// that follow while established connections keep theirs. A Client builds
// the tls.Config for dialling a Core. PeerIdentity names the verified
// client certificate of a connection, for the trust decisions of the
// edge. A Collector exports every loaded certificate's expiry.
//
// Loading is all or nothing: a file that cannot be read, a key that is
// not a key or does not match its certificate, a CA file without a
// certificate fail the load and leave the previous material in place.
// A certificate that has expired (or is not valid yet) is loaded with a
// warning in the log: the expiry metric is where alerts come from, and
// refusing it would turn an expired certificate into no TLS at all after
// the next restart.
package tlsconf
