package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sipedge/sipedge/daemon/ctl"
	"github.com/sipedge/sipedge/daemon/failover"
	"github.com/sipedge/sipedge/daemon/update"
	"github.com/sipedge/sipedge/daemon/version"
	"github.com/sipedge/sipedge/hal"
	"github.com/sipedge/sipedge/platform"
	"github.com/sipedge/sipedge/platform/bundle"
)

// ApplyParams are update.apply's parameters.
type ApplyParams struct {
	File  string `json:"file"`  // the bundle, a path on this box
	URL   string `json:"url"`   // or where to fetch it: http(s) on the management network
	Force bool   `json:"force"` // a downgrade, or with an unhealthy peer
}

// UpdateStatus is `ctl update`.
type UpdateStatus struct {
	Version   string        `json:"version"` // vMAJOR.MINOR.PATCH+BUILD
	Describe  string        `json:"describe"`
	Slot      string        `json:"slot,omitempty"`
	Trial     bool          `json:"trial"`
	Available string        `json:"unavailable,omitempty"` // why updates cannot be applied
	Last      *update.State `json:"last,omitempty"`
	Keys      []string      `json:"keys"`
}

// setupUpdate wires firmware updates (daemon/update): the ctl methods,
// and at start either the trial of a new firmware (its test flags, then
// the watch that commits the slot) or the report of a rollback.
func (a *App) setupUpdate(ctx context.Context) error {
	cfg := a.Config()
	node := cfg.Node.Name
	boot := update.ReadBoot()
	keys, kerr := bundle.TrustedKeys()
	var board, disk string
	if p, err := platform.Lookup(cfg.Node.Platform); err == nil && cfg.Node.Platform != "" {
		board, disk = p.Name, p.Disk
	}
	in := (&update.Installer{Board: board, Running: version.Ordered(), Keys: keys, Boot: boot, Disk: disk,
		EnvPath: update.EnvPath, DataDir: cfg.Node.DataDir, ConfigPath: a.opts.ConfigPath, SlotSize: 64 << 20, Log: a.log}).Init()
	status := func() UpdateStatus {
		st := UpdateStatus{Version: version.Ordered().String(), Describe: version.Version, Slot: boot.Slot, Trial: boot.Trial}
		if err := errors.Join(kerr, in.Ready()); err != nil {
			st.Available = err.Error()
		}
		st.Last, _ = update.ReadState(cfg.Node.DataDir)
		st.Trial = boot.Trial && (st.Last == nil || st.Last.Phase != update.PhaseCommitted)
		for _, k := range keys {
			st.Keys = append(st.Keys, k.Name)
		}
		return st
	}
	a.ctl.Handle(update.MethodStatus, "firmware: version, slot, trial, the last update", func(context.Context, json.RawMessage) (any, error) {
		return status(), nil
	})
	a.ctl.Handle(update.MethodApply, "install a signed update bundle in the inactive slot and reboot into it once: {file, force}", func(ctx context.Context, p json.RawMessage) (any, error) {
		var q ApplyParams
		if err := ctl.DecodeParams(p, &q); err != nil {
			return nil, err
		}
		if q.URL != "" && q.File == "" {
			var allowed []netip.Prefix
			if m := a.Config().Network.Management; m != nil && m.Address.IsValid() {
				allowed = append(allowed, m.Address.Masked())
			}
			a.log.Info("update: fetching", "url", q.URL)
			path, err := update.Fetch(ctx, q.URL, allowed, cfg.Node.DataDir, 5*time.Minute)
			if err != nil {
				return nil, ctl.Errorf(ctl.CodeBadRequest, "%v", err)
			}
			defer os.Remove(path)
			q.File = path
		}
		if q.File == "" {
			return nil, ctl.Errorf(ctl.CodeBadRequest, "no bundle file or url given")
		}
		f, err := os.Open(q.File)
		if err != nil {
			return nil, ctl.Errorf(ctl.CodeBadRequest, "%v", err)
		}
		defer f.Close()
		return a.applyUpdate(ctx, in, f, q.Force)
	})
	if kerr != nil {
		a.log.Error("update: no bundle can be verified", "err", kerr)
	}
	if boot.Slot == "" {
		return nil
	}
	if !boot.Trial {
		reset, _ := hal.WatchdogBootStatus("/sys", cfg.Watchdog.Device)
		msg, err := update.CheckRollback(cfg.Node.DataDir, update.EnvPath, boot, reset)
		if err != nil {
			a.log.Error("update: reading the last update", "err", err)
		}
		if msg != "" {
			a.log.Error("update: "+msg, "slot", boot.Slot)
			a.events.Event("update.rolled_back", node, msg)
		}
		return nil
	}
	st, err := update.BeginTrial(cfg.Node.DataDir, boot)
	if err != nil {
		return err
	}
	a.log.Info("update: trial boot", "version", st.To, "from", st.From, "slot", boot.Slot, "commit_after", cfg.Update.CommitAfter.D())
	if t := st.Test; t != nil {
		switch {
		case t.ExitAtStart:
			return errors.New("update: test flag exit_at_start: exiting")
		case t.HangAtStart:
			a.log.Warn("update: test flag hang_at_start: hanging before the watchdog is fed")
			select {}
		}
	}
	trial := &update.Trial{Boot: boot, DataDir: cfg.Node.DataDir, EnvPath: update.EnvPath, To: st.To,
		CommitAfter: cfg.Update.CommitAfter.D(), GiveUpAfter: cfg.Update.GiveUpAfter.D(), Log: a.log,
		Persistent: func() bool { return onPartition(cfg.Node.DataDir) },
		Healthy:    func(ctx context.Context) error { return a.trialHealth(ctx, st.Forced) },
		Committed: func(took time.Duration) {
			if err := a.store.CommitSchema(); err != nil {
				a.log.Error("update: store schema", "err", err)
			}
			a.events.Event("update.committed", node, fmt.Sprintf("update from %s to %s committed in slot %s after %s", st.From, st.To, boot.Slot, took.Round(time.Second)))
		},
		Failed: func(reason string) {
			a.events.Event("update.trial_failed", node, "update to "+st.To+" failed its trial: "+reason)
		},
		Reboot: a.rebootSoon,
	}
	a.add("update", trial.Run)
	return nil
}

// applyUpdate refuses on a VIP holder whose peer is not healthy (unless
// forced), installs the bundle, then stops the daemon cleanly (a VIP
// holder hands its VIPs to the peer: the planned handover) and has PID 1
// reboot into the trial.
func (a *App) applyUpdate(ctx context.Context, in *update.Installer, f *os.File, force bool) (any, error) {
	if err := a.peerReady(); err != nil && !force {
		return nil, ctl.Errorf(ctl.CodeConflict, "update: %v (force to update anyway: the box then commits on its own health)", err)
	}
	node := a.Config().Node.Name
	res, err := in.Apply(ctx, f, force, nil)
	if err != nil {
		a.events.Event("update.refused", node, err.Error())
		switch {
		case errors.Is(err, update.ErrBusy):
			return nil, ctl.Errorf(ctl.CodeConflict, "%v", err)
		case errors.Is(err, bundle.ErrSignature), errors.Is(err, bundle.ErrBoard), errors.Is(err, bundle.ErrOlder),
			errors.Is(err, bundle.ErrChanged), errors.Is(err, bundle.ErrFormat):
			return nil, ctl.Errorf(ctl.CodeBadRequest, "%v", err)
		}
		return nil, ctl.Errorf(ctl.CodeConflict, "%v", err)
	}
	if force {
		if err := markForced(a.Config().Node.DataDir); err != nil {
			a.log.Error("update", "err", err)
		}
	}
	a.events.Event("update.applied", node, fmt.Sprintf("update to %s written to slot %s in %s: rebooting into its trial", res.Version, res.Slot, res.Took.Round(time.Millisecond)))
	a.rebootSoon()
	return res, nil
}

func markForced(dataDir string) error {
	s, err := update.ReadState(dataDir)
	if err != nil || s == nil {
		return err
	}
	s.Forced = true
	return update.WriteState(dataDir, s)
}

// vipStatus is the failover manager's status, if it runs.
func (a *App) vipStatus() (failover.Status, bool) {
	a.statusMu.Lock()
	f := a.status["vip"]
	a.statusMu.Unlock()
	if f == nil {
		return failover.Status{}, false
	}
	st, ok := f().(failover.Status)
	return st, ok
}

// peerReady is nil unless this box holds a VIP whose peer is not alive.
func (a *App) peerReady() error {
	st, ok := a.vipStatus()
	if !ok {
		return nil
	}
	return peersDown(st, true)
}

// peersDown names the first VIP group (only those this box holds, with
// heldOnly) that has no live peer: the pair cannot lose this box now.
func peersDown(st failover.Status, heldOnly bool) error {
	for _, g := range st.Groups {
		if heldOnly && g.Holder != st.Node {
			continue
		}
		alive := false
		for _, p := range g.Peers {
			alive = alive || p.Alive
		}
		if !alive {
			if heldOnly {
				return fmt.Errorf("this box holds VIP %s and no peer is alive to take it", g.Name)
			}
			return fmt.Errorf("no peer of VIP %s heard", g.Name)
		}
	}
	return nil
}

// trialHealth: every subsystem alive, SIP answering on the first UDP
// listener (any SIP answer: a 503 for want of Cores is still a working
// firmware), the peer heard when there is one (unless forced).
func (a *App) trialHealth(ctx context.Context, forced bool) error {
	if ok, stale := a.live.Check(time.Now()); !ok {
		return fmt.Errorf("subsystems not alive: %s", strings.Join(stale, ","))
	}
	if sip := a.Config().SIP; sip != nil {
		for _, l := range sip.Listen {
			if addr, ok := strings.CutPrefix(l, "udp:"); ok {
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				err := failover.SIPOptions(cctx, addr)
				cancel()
				if err != nil && !strings.Contains(err.Error(), ": answered ") {
					return fmt.Errorf("SIP does not answer: %w", err)
				}
				break
			}
		}
	}
	if forced {
		return nil
	}
	if st, ok := a.vipStatus(); ok {
		return peersDown(st, false)
	}
	return nil
}

// rebootSoon has PID 1 reboot the box after a clean stop of the daemon
// (update.RebootRequest, then SIGTERM to itself: VIPs are handed over).
func (a *App) rebootSoon() {
	go func() {
		time.Sleep(500 * time.Millisecond)
		if err := update.RequestReboot(); err != nil {
			a.log.Error("update: reboot request", "err", err)
		}
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
	}()
}

// onPartition says whether dir is on a real file system, not the tmpfs
// PID 1 falls back to.
func onPartition(dir string) bool {
	var s unix.Statfs_t
	if err := unix.Statfs(dir, &s); err != nil {
		return false
	}
	return s.Type != unix.TMPFS_MAGIC && s.Type != unix.RAMFS_MAGIC
}
