package resolve

import "errors"

// Errors a Lookup wraps; test them with errors.Is.
var (
	// ErrNotFound: the name has no records of the kind asked for
	// (NXDOMAIN, or no addresses for it or for any of its SRV targets).
	ErrNotFound = errors.New("no such name or no addresses")
	// ErrNoService: the SRV answer's only target is "." (RFC 2782: the
	// service is decidedly not offered at this domain).
	ErrNoService = errors.New(`service not offered (SRV target ".")`)
	// ErrNoServers: no DNS server is configured.
	ErrNoServers = errors.New("no DNS servers")
	// ErrServerFailure: no server gave a usable answer (timeouts,
	// SERVFAIL, REFUSED, malformed or mismatched answers).
	ErrServerFailure = errors.New("no DNS server answered")
)
