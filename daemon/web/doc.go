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
// (others get 403). Reads need no login; every action needs a session
// (password login, hashed with PBKDF2-SHA256, constant-time compare,
// per-address and global lockout) and a CSRF token on every POST.
package web
