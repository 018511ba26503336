// Package conformance holds no code: its tests drive the real sipedge
// binary with the RFC 4475 (section 3) and RFC 5118 (section 4) torture
// messages and with SIPp calls over IPv6 and across address families,
// and compare what the balancer does with what the RFCs expect of a
// proxy. README.md is the table: each message, the RFC's expectation,
// the choice made where the RFC leaves one, and why.
package conformance
