// Package tlspeers tests sipedge's SIP over TLS end to end with the real
// daemon binary (`sipedge run`, driven by `sipedge ctl`) and real peers
// that are not written in Go, as the TLS issue asks:
//
//   - baresip (Debian baresip-core) places a call over TLS to a tls:
//     listener of sipedge, which balances it to a SIPp Core on UDP; with
//     sip.tls.verify_clients: require, baresip's client certificate is
//     accepted when it chains to sip.tls.client_ca and refused when it
//     comes from another CA;
//   - Kamailio with its tls module (Debian kamailio-tls-modules) is a
//     tls: Core behind sipedge: sipedge dials it over TLS, verifies its
//     certificate for the Core's tls_name against sip.tls.core_ca, probes
//     it and routes SIPp calls (INVITE, ACK, BYE) through it to a SIPp
//     UAS; with the wrong CA the Core is never used.
//
// The package has no non-test code: this file only carries its comment.
// The tests skip when a peer is missing, and fail instead under
// SIPEDGE_TEST_STRICT=1 (scripts/test-deps.sh installs them).
package tlspeers
