package update

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/sipedge/sipedge/platform/bundle"
	"github.com/sipedge/sipedge/platform/grubenv"
)

// MethodApply and MethodStatus are the control methods (ctl, web,
// console use these names).
const (
	MethodApply  = "update.apply"
	MethodStatus = "update"
)

// SlotPartName is the bundle part written to the inactive slot.
const SlotPartName = "slot.img"

// ErrBusy is returned while another update is being applied.
var ErrBusy = errors.New("update: another update is being applied")

// Installer applies bundles on this box.
type Installer struct {
	Board   string         // the board profile's name
	Running bundle.Version // this firmware
	Keys    []bundle.Key
	Boot    Boot   // this boot's slot (ReadBoot)
	Disk    string // the boot disk (profile disk), e.g. /dev/vda
	EnvPath string // GRUB's environment block (EnvPath)
	DataDir string // where State is kept (the data partition)
	// ConfigPath is the configuration file, kept as it is when an
	// update is armed, for a rollback to put back (config.go).
	ConfigPath string
	// SlotSize bounds the slot image (the partition's size).
	SlotSize int64
	Log      *slog.Logger
	// Now is the clock (time.Now if nil).
	Now func() time.Time

	busy chan struct{}
}

// Progress is reported while a slot is written and read back.
type Progress struct {
	Stage string `json:"stage"` // verify, write, readback, done
	Done  int64  `json:"done"`
	Total int64  `json:"total"`
}

// Result is what Apply did.
type Result struct {
	Version string `json:"version"`
	From    string `json:"from"`
	Slot    string `json:"slot"`
	Bytes   int64  `json:"bytes"`
	Test    bool   `json:"test_key,omitempty"`
	// Took is how long writing and checking the slot took.
	Took time.Duration `json:"took"`
}

func (in *Installer) lock() bool {
	if in.busy == nil {
		panic("update: Installer used without Init")
	}
	select {
	case in.busy <- struct{}{}:
		return true
	default:
		return false
	}
}

// Init prepares the installer.
func (in *Installer) Init() *Installer {
	in.busy = make(chan struct{}, 1)
	if in.Log == nil {
		in.Log = slog.New(slog.DiscardHandler)
	}
	if in.Now == nil {
		in.Now = time.Now
	}
	return in
}

// Ready says why this box cannot install updates, or nil.
func (in *Installer) Ready() error {
	switch {
	case in.Boot.Slot == "":
		return errors.New("update: this box did not boot from the A/B disk (no sipedge.slot= on the kernel command line)")
	case in.Disk == "":
		return errors.New("update: the board profile names no boot disk")
	}
	if _, err := ReadEnv(in.EnvPath); err != nil {
		return err
	}
	if in.Boot.Trial {
		if s, _ := ReadState(in.DataDir); s == nil || s.Phase != PhaseCommitted {
			return errors.New("update: this boot is the trial of a new firmware: wait for it to commit")
		}
	}
	return nil
}

// Apply verifies the bundle read from r (at most limit bytes read:
// the header and the parts the manifest lists), writes its slot image to
// the inactive slot, reads it back, records the pending update and arms
// GRUB's one-shot trial of that slot. The caller reboots. Nothing is
// armed unless every check passed: a bad bundle, or one cut short, only
// leaves the inactive slot unbootable, which it already was to GRUB.
func (in *Installer) Apply(ctx context.Context, r io.Reader, force bool, progress func(Progress)) (*Result, error) {
	if !in.lock() {
		return nil, ErrBusy
	}
	defer func() { <-in.busy }()
	if progress == nil {
		progress = func(Progress) {}
	}
	if err := in.Ready(); err != nil {
		return nil, err
	}
	progress(Progress{Stage: "verify"})
	br := bufio.NewReaderSize(r, 1<<20)
	h, err := bundle.ReadHeader(br, in.Keys)
	if err != nil {
		return nil, err
	}
	if err := h.Check(in.Board, in.Running, force); err != nil {
		return nil, err
	}
	if len(h.Parts) != 1 || h.Parts[0].Name != SlotPartName {
		return nil, fmt.Errorf("update: the bundle's parts are %v, this firmware installs one %q", h.Parts, SlotPartName)
	}
	part := h.Parts[0]
	if in.SlotSize > 0 && part.Size > in.SlotSize {
		return nil, fmt.Errorf("update: the slot image is %d bytes, the slot %d", part.Size, in.SlotSize)
	}
	slot := Other(in.Boot.Slot)
	dev := PartPath(in.Disk, SlotPart(slot))
	start := in.Now()
	in.Log.Info("update: writing the inactive slot", "version", h.Version, "slot", slot, "device", dev, "bytes", part.Size, "key", h.Key.Name)
	// The slot is no longer what the environment may point at: a
	// committed slot=B with B being rewritten must not happen (it cannot:
	// the inactive slot is never the committed one), and a stale try is
	// cleared before the first byte is written.
	if err := EditEnv(in.EnvPath, func(e grubenv.Env) { e["try"] = "" }); err != nil {
		return nil, err
	}
	if err := writeSlot(ctx, dev, h.Part(br, 0), part.Size, progress); err != nil {
		return nil, err
	}
	progress(Progress{Stage: "readback", Total: part.Size})
	if err := checkSlot(dev, part); err != nil {
		return nil, err
	}
	if err := snapshotConfig(in.DataDir, in.ConfigPath); err != nil {
		return nil, err
	}
	st := &State{Phase: PhasePending, From: in.Running.String(), To: h.Version, Slot: slot, Applied: in.Now().UTC()}
	if h.Key.Test {
		st.Test = h.Test
	}
	if err := WriteState(in.DataDir, st); err != nil {
		return nil, err
	}
	if err := EditEnv(in.EnvPath, func(e grubenv.Env) { e["try"] = slot }); err != nil {
		return nil, err
	}
	took := in.Now().Sub(start)
	in.Log.Info("update: slot written and checked, trial boot armed", "version", h.Version, "slot", slot, "took", took.Round(time.Millisecond))
	progress(Progress{Stage: "done", Done: part.Size, Total: part.Size})
	return &Result{Version: h.Version, From: in.Running.String(), Slot: slot, Bytes: part.Size, Test: h.Key.Test, Took: took}, nil
}

// writeSlot copies the part (which fails at its end if its hash is not
// the manifest's) to the slot's device and syncs it.
func writeSlot(ctx context.Context, dev string, src io.Reader, size int64, progress func(Progress)) error {
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("update: open slot: %w", err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var done int64
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("update: writing the slot: %w", err)
		}
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, err := f.Write(buf[:n]); err != nil {
				return fmt.Errorf("update: writing the slot: %w", err)
			}
			done += int64(n)
			progress(Progress{Stage: "write", Done: done, Total: size})
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("update: syncing the slot: %w", err)
	}
	return f.Close()
}

// checkSlot reads the slot back (past the page cache) and compares its
// hash with the manifest's.
func checkSlot(dev string, p bundle.Part) error {
	f, err := os.Open(dev)
	if err != nil {
		return fmt.Errorf("update: read back: %w", err)
	}
	defer f.Close()
	dropCache(f)
	h := sha256.New()
	if n, err := io.Copy(h, io.LimitReader(f, p.Size)); err != nil || n != p.Size {
		return fmt.Errorf("update: read back %d of %d bytes: %v", n, p.Size, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != p.SHA256 {
		return fmt.Errorf("update: the slot read back hashes to %s, the bundle says %s: not armed", got, p.SHA256)
	}
	return nil
}
