package update

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/sipedge/sipedge/platform/bundle"
)

// Phases of an update, as State.Phase.
const (
	PhasePending    = "pending"     // written, GRUB will try it once
	PhaseTrial      = "trial"       // the new firmware is running its trial
	PhaseCommitted  = "committed"   // the new slot is the one GRUB boots
	PhaseRolledBack = "rolled_back" // the old slot came back
)

// State is the last update, kept in the data partition (it survives
// every update and is read by the old and the new firmware alike).
type State struct {
	Phase   string            `json:"phase"`
	From    string            `json:"from"` // running version when applied
	To      string            `json:"to"`
	Slot    string            `json:"slot"` // the slot written
	Applied time.Time         `json:"applied"`
	Test    *bundle.TestFlags `json:"test,omitempty"`
	// Reason is why a trial failed, written by the trial firmware (or
	// its PID 1) before it rebooted; empty when it never got to say.
	Reason    string    `json:"reason,omitempty"`
	Committed time.Time `json:"committed,omitzero"`
	// Forced: applied despite an unhealthy peer (or as a downgrade);
	// the trial then commits on the box's own health.
	Forced bool `json:"forced,omitempty"`
	// ConfigRestored: the old firmware put the configuration of before
	// the update back (RestoreConfig).
	ConfigRestored bool `json:"config_restored,omitempty"`
}

// StatePath is the state file in a data directory.
func StatePath(dataDir string) string { return filepath.Join(dataDir, "update", "state.json") }

// ReadState reads the state; none is (nil, nil).
func ReadState(dataDir string) (*State, error) {
	b, err := os.ReadFile(StatePath(dataDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("update: state: %w", err)
	}
	if len(b) > 64<<10 {
		return nil, fmt.Errorf("update: state: %d bytes", len(b))
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("update: state: %w", err)
	}
	return &s, nil
}

// WriteState replaces the state atomically and durably.
func WriteState(dataDir string, s *State) error {
	b, _ := json.MarshalIndent(s, "", "  ")
	if err := writeDurable(StatePath(dataDir), b); err != nil {
		return fmt.Errorf("update: state: %w", err)
	}
	return nil
}

// RecordTrialFailure notes why the running trial failed, before the box
// reboots into the old slot (PID 1 calls it when the daemon dies during
// a trial). Outside a trial it does nothing.
func RecordTrialFailure(dataDir, reason string) error {
	s, err := ReadState(dataDir)
	if err != nil || s == nil || (s.Phase != PhaseTrial && s.Phase != PhasePending) {
		return err
	}
	if s.Reason == "" {
		s.Reason = reason
	}
	return WriteState(dataDir, s)
}

// RebootRequest is the file the daemon leaves before it stops to have
// PID 1 reboot the box (into a trial, or back to the old slot).
const RebootRequest = "/run/sipedge-reboot"

// RequestReboot leaves RebootRequest.
func RequestReboot() error { return os.WriteFile(RebootRequest, []byte("update\n"), 0o600) }

// TakeRebootRequest reports (and removes) a reboot request.
func TakeRebootRequest() bool { return os.Remove(RebootRequest) == nil }
