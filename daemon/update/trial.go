package update

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sipedge/sipedge/platform/grubenv"
)

// CheckRollback runs on a boot that is not a trial: if the last update
// was pending or in its trial on the other slot and GRUB has no try
// left, the old slot came back, and CheckRollback records why (the trial
// firmware's own reason, else the watchdog's reset, else a reset or
// power loss before the commit) and returns the event's message,
// "update to X rolled back: why". A committed update whose state was
// not yet written (the box died between the two writes) is marked
// committed. Nothing to report: "".
func CheckRollback(dataDir, envPath string, boot Boot, watchdogReset bool) (string, error) {
	s, err := ReadState(dataDir)
	if err != nil || s == nil || (s.Phase != PhasePending && s.Phase != PhaseTrial) {
		return "", err
	}
	env, err := ReadEnv(envPath)
	if err != nil {
		return "", err
	}
	if env["try"] != "" {
		return "", nil // GRUB has not tried it yet
	}
	if s.Slot == boot.Slot {
		if env["slot"] == s.Slot {
			s.Phase = PhaseCommitted
			return "", WriteState(dataDir, s)
		}
		return "", nil
	}
	if s.Reason == "" {
		switch {
		case s.Phase == PhasePending:
			s.Reason = "the trial never reached a running daemon with /data mounted (a kernel or early boot failure)"
		case watchdogReset:
			s.Reason = "it hung and the watchdog reset the box"
		default:
			s.Reason = "the box was reset or lost power before the new firmware committed"
		}
	}
	s.Phase = PhaseRolledBack
	if err := WriteState(dataDir, s); err != nil {
		return "", err
	}
	msg := fmt.Sprintf("update to %s rolled back: %s", s.To, s.Reason)
	if s.ConfigRestored {
		msg += "; the configuration of before the update is back (the trial's is in " + ConfigTrial(dataDir) + ")"
	}
	return msg, nil
}

// BeginTrial runs at the start of a trial boot: the state must be the
// pending update of this slot. It is marked in trial and returned (its
// test flags say how to misbehave).
func BeginTrial(dataDir string, boot Boot) (*State, error) {
	s, err := ReadState(dataDir)
	if err != nil {
		return nil, err
	}
	if s == nil || s.Slot != boot.Slot || (s.Phase != PhasePending && s.Phase != PhaseTrial) {
		return nil, fmt.Errorf("update: trial boot of slot %s without a pending update of it in %s", boot.Slot, StatePath(dataDir))
	}
	s.Phase = PhaseTrial
	return s, WriteState(dataDir, s)
}

// Trial watches the new firmware's health on its trial boot and commits
// the slot once it has been healthy for CommitAfter, or gives up after
// GiveUpAfter and reboots into the old slot.
type Trial struct {
	Boot    Boot
	DataDir string
	EnvPath string
	To      string // the version on trial
	// CommitAfter is how long the firmware must stay healthy.
	CommitAfter time.Duration
	// GiveUpAfter: no commit by then is a failed health check.
	GiveUpAfter time.Duration
	// Persistent says whether DataDir is the data partition (not the
	// tmpfs fallback): a trial never commits without it.
	Persistent func() bool
	// Healthy returns nil when every subsystem is alive, SIP answers and
	// the peer is heard (when there is one).
	Healthy func(ctx context.Context) error
	// Committed and Failed are told the outcome (events); Reboot reboots
	// into the old slot.
	Committed func(took time.Duration)
	Failed    func(reason string)
	Reboot    func()
	Interval  time.Duration // between checks, default 1s
	Log       *slog.Logger
	Now       func() time.Time
}

// ErrNotPersistent is the health error while /data is not the data
// partition.
var ErrNotPersistent = errors.New("the data partition is not mounted (/data is a tmpfs)")

// Run checks health every Interval until the commit, a failure or ctx's
// end.
func (t *Trial) Run(ctx context.Context) error {
	if t.Interval <= 0 {
		t.Interval = time.Second
	}
	if t.Now == nil {
		t.Now = time.Now
	}
	if t.Log == nil {
		t.Log = slog.New(slog.DiscardHandler)
	}
	start := t.Now()
	var healthySince time.Time
	var last error
	tick := time.NewTicker(t.Interval)
	defer tick.Stop()
	for {
		err := t.check(ctx)
		now := t.Now()
		switch {
		case err != nil:
			if last == nil || err.Error() != last.Error() {
				t.Log.Warn("update: trial not healthy", "version", t.To, "err", err)
			}
			healthySince = time.Time{}
		case healthySince.IsZero():
			healthySince = now
			t.Log.Info("update: trial healthy, committing after", "version", t.To, "after", t.CommitAfter)
		}
		last = err
		if err == nil && now.Sub(healthySince) >= t.CommitAfter {
			if cerr := t.commit(); cerr != nil {
				return cerr
			}
			t.Log.Info("update: committed", "version", t.To, "slot", t.Boot.Slot, "took", now.Sub(start).Round(time.Millisecond))
			if t.Committed != nil {
				t.Committed(now.Sub(start))
			}
			return nil
		}
		if now.Sub(start) >= t.GiveUpAfter {
			reason := fmt.Sprintf("not healthy for %s within %s: %v", t.CommitAfter, t.GiveUpAfter, last)
			t.Log.Error("update: trial failed, rebooting into the old slot", "version", t.To, "reason", reason)
			if err := RecordTrialFailure(t.DataDir, reason); err != nil {
				t.Log.Error("update: recording the failure", "err", err)
			}
			if t.Failed != nil {
				t.Failed(reason)
			}
			if t.Reboot != nil {
				t.Reboot()
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func (t *Trial) check(ctx context.Context) error {
	if t.Persistent != nil && !t.Persistent() {
		return ErrNotPersistent
	}
	if t.Healthy == nil {
		return nil
	}
	return t.Healthy(ctx)
}

// commit makes this slot GRUB's default and records it.
func (t *Trial) commit() error {
	if err := EditEnv(t.EnvPath, func(e grubenv.Env) { e["slot"] = t.Boot.Slot; e["try"] = "" }); err != nil {
		return err
	}
	s, err := ReadState(t.DataDir)
	if err != nil || s == nil {
		return fmt.Errorf("update: commit: state: %v", err)
	}
	s.Phase = PhaseCommitted
	s.Committed = t.Now().UTC()
	return WriteState(t.DataDir, s)
}
