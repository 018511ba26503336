// Package kamailiotls is what the tests and the bench that run Debian's
// Kamailio (5.6.3, kamailio-tls-modules) over TLS share: the tls
// module's configuration and how to tell that Kamailio crashed.
//
// With more than one TCP worker, Debian's Kamailio 5.6.3 with OpenSSL 3
// can crash once many TLS connections are open (a double free in the
// tls module's memory hooks: tlsf_free "freeing already freed pointer"
// from tls_init.c ser_free, then a worker dies of SIGSEGV;
// kamailio#3791, and 5.6 lacks the later tls_threads_mode workaround).
// With tcp_children=1 it held 10,000 TLS connections: both users run it
// so.
package kamailiotls

import (
	"fmt"
	"strings"
)

// Config is the tls module's tls.cfg for a certificate and key: TLS 1.2
// and up on both sides, no client certificate asked for and none
// verified.
func Config(cert, key string) string {
	return fmt.Sprintf(`[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
certificate = %s
private_key = %s

[client:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
`, cert, key)
}

// crashMarks are the log lines of a worker killed by a signal and of
// the tls module's double free (kamailio#3791).
var crashMarks = []string{"exited by a signal", "freeing already freed pointer", "beginning overwritten"}

// Crashed returns the first crash mark found in Kamailio's log text, or
// "" when there is none.
func Crashed(log string) string {
	for _, m := range crashMarks {
		if strings.Contains(log, m) {
			return m
		}
	}
	return ""
}
