package tlsconf

import (
	"crypto/tls"
	"fmt"
)

// VerifyMode is how the server side asks for client certificates.
type VerifyMode string

// The verification modes (config: sip.tls.verify_clients).
const (
	// VerifyNone asks for no client certificate.
	VerifyNone VerifyMode = "none"
	// VerifyOptional asks for one and verifies it when it is given; a
	// client without one still connects (and has no PeerIdentity).
	VerifyOptional VerifyMode = "optional"
	// VerifyRequire refuses a client without a certificate that chains
	// to the client CA.
	VerifyRequire VerifyMode = "require"
)

// ParseVerifyMode parses "none" (or ""), "optional" or "require".
func ParseVerifyMode(s string) (VerifyMode, error) {
	switch m := VerifyMode(s); m {
	case "":
		return VerifyNone, nil
	case VerifyNone, VerifyOptional, VerifyRequire:
		return m, nil
	}
	return "", fmt.Errorf("tlsconf: client verification %q: want none, optional or require", s)
}

// clientAuth is m's tls.ClientAuthType.
func (m VerifyMode) clientAuth() tls.ClientAuthType {
	switch m {
	case VerifyOptional:
		return tls.VerifyClientCertIfGiven
	case VerifyRequire:
		return tls.RequireAndVerifyClientCert
	}
	return tls.NoClientCert
}
