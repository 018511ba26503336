package initd

import (
	"log/slog"

	"github.com/sipedge/sipedge/daemon/update"
)

// rebootOnUpdate runs when the daemon has exited: a daemon that asked
// for a reboot (an update applied, or its trial given up) gets one; on a
// trial boot, until it commits, any death of the daemon fails the trial
// at once (recorded for the old firmware to report) and the box reboots
// into the old slot instead of restarting the new daemon.
func rebootOnUpdate(dataDir string, boot update.Boot, persistent bool, how string, log *slog.Logger) {
	requested := update.TakeRebootRequest()
	reboot, failed := afterDaemonExit(dataDir, boot, persistent, requested)
	if !reboot {
		return
	}
	if failed {
		if err := update.RecordTrialFailure(dataDir, "the daemon exited during the trial ("+how+")"); err != nil {
			log.Error("initd: recording the failed trial", "err", err)
		}
	}
	log.Warn("initd: rebooting", "requested_by_daemon", requested, "trial", boot.Trial, "how", how)
	if err := Reboot(false); err != nil {
		log.Error("initd: reboot", "err", err)
	}
}
