package initd

import (
	"testing"

	"github.com/sipedge/sipedge/daemon/update"
)

func TestAfterDaemonExit(t *testing.T) {
	dir := t.TempDir()
	trial := update.Boot{Slot: "B", Trial: true}
	update.WriteState(dir, &update.State{Phase: update.PhaseTrial, Slot: "B", To: "v1.0.0+2"})
	for _, tt := range []struct {
		name                 string
		boot                 update.Boot
		persistent, request  bool
		reboot, recordFailed bool
	}{
		{"ordinary boot: restart", update.Boot{Slot: "A"}, true, false, false, false},
		{"ordinary boot, asked", update.Boot{Slot: "A"}, true, true, true, false},
		{"trial: reboot, recorded", trial, true, false, true, true},
		{"trial without /data: reboot", trial, false, false, true, false},
	} {
		reboot, failed := afterDaemonExit(dir, tt.boot, tt.persistent, tt.request)
		if reboot != tt.reboot || failed != tt.recordFailed {
			t.Errorf("%s: reboot %v record %v", tt.name, reboot, failed)
		}
	}
	update.WriteState(dir, &update.State{Phase: update.PhaseCommitted, Slot: "B"})
	if reboot, _ := afterDaemonExit(dir, trial, true, false); reboot {
		t.Error("a committed trial boot reboots when its daemon dies: it must restart it")
	}
}
