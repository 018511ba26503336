// Package initd is what sipedge does when it runs as PID 1 in the
// appliance image, kept as a library in the gokrazy manner: small pieces
// (the mount table, the module loader, the reaper, the supervisor) that
// are tested on their own, and Main, which strings them together and
// never returns.
//
// PID 1 mounts /proc, /sys, /dev (devtmpfs), /run, /tmp and the data
// directory, loads the board profile's kernel modules with finit_module
// in the profile's order (there is no modprobe), brings up loopback,
// reaps every orphan, and runs the daemon as a child (a re-exec of
// itself with the "run" arguments). When the daemon dies, PID 1 removes
// the daemon's VIP addresses at once, so that a crashed box never answers
// ARP for a VIP beside the peer that takes it over, and then restarts
// the daemon, or reboots the box if it keeps dying. It also keeps the
// operator's console menu running on the board profile's console port
// (KeepRunning: restarted with back-off, never a reboot), after offering
// there for 3 s to clear a forgotten console password (requestRecovery,
// see daemon/console), while the
// kernel, PID 1 and the daemon log to /dev/console, the profile's log
// port, where the lab's debug hooks listen with sipedge.debug=1.
package initd
