// Package web is the box's web face: a status page (embedded assets, no
// CDN, small-screen friendly) that updates live by polling its JSON API,
// the JSON API itself (every view has a twin under /api/), the actions an
// operator may take after logging in, and /metrics in the Prometheus text
// format.
//
// The package holds no business logic: every read and every action is a
// call of the daemon's control methods (the same ones `sipedge ctl` and
// the serial console use), made in process through a Caller. A method
// that the box does not have (a DB box has no balancer) is shown as "not
// available on this box".
//
// Access: the whole server answers only clients inside web.open_to
// (others get 403) and only to a Host header that names the box (421
// otherwise: DNS rebinding). Reads need no login; logging in and every
// action are for web.admin_from, with a session (password login, hashed
// with PBKDF2-SHA256, constant-time compare; attempts counted before the
// check, one check per source, a global lock that spares admin_from) and
// a CSRF token on every POST. With a certificate the server speaks HTTPS
// only (TLS 1.2+, Secure cookies, HSTS with the operator's certificate).
package web
