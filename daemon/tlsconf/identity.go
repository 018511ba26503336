package tlsconf

import "crypto/tls"

// PeerIdentity returns the names of the client certificate of a
// connection whose chain was verified (VerifyOptional or VerifyRequire
// against the client CA): its DNS SANs, or its subject CN when it has
// none. It returns nil for a connection without a verified client
// certificate, so an unverified certificate never names anyone.
func PeerIdentity(state tls.ConnectionState) []string {
	if len(state.VerifiedChains) == 0 || len(state.VerifiedChains[0]) == 0 {
		return nil
	}
	leaf := state.VerifiedChains[0][0]
	if names := dnsNames(leaf); len(names) > 0 {
		return names
	}
	if cn := leaf.Subject.CommonName; cn != "" {
		return []string{cn}
	}
	return nil
}
