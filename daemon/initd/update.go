package initd

import "github.com/sipedge/sipedge/daemon/update"

// afterDaemonExit decides what PID 1 does when the daemon has exited:
// reboot (the daemon asked, or a trial not yet committed lost its
// daemon), and whether that is a failed trial to record.
func afterDaemonExit(dataDir string, boot update.Boot, persistent, requested bool) (reboot, failedTrial bool) {
	trial := boot.Trial
	if trial && persistent {
		// After the commit this boot is an ordinary one: a daemon that
		// dies is restarted as always.
		if s, err := update.ReadState(dataDir); err == nil && s != nil && s.Phase == update.PhaseCommitted {
			trial = false
		}
	}
	return requested || trial, trial && persistent
}
