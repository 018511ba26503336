// Package console is the appliance's serial console: a login (the web
// password, checked and rate-limited by the daemon: Gate), a banner
// (product, version, hostname, role, management address, each VIP and
// its state) and a numbered menu that works on a dumb 80x24 terminal at
// 115200 baud. OfferRecovery is PID 1's boot-time offer to clear a
// forgotten password (README.md).
//
// Every change goes through the daemon's control methods over its unix
// socket, the same code `sipedge ctl` and the web page use; only ping
// and the shell run locally. Like an appliance console it ignores Ctrl-C
// and Ctrl-Z: the terminal is put in a raw-ish mode (no signals, no
// echo: the console echoes itself), where ^C cancels the current prompt.
package console
