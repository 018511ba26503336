package update

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// The configuration across a rollback. The new firmware runs on the
// configuration file of the data partition and may rewrite it (or an
// operator may change it during the trial) with settings the old
// firmware does not know, which would then refuse the file and run on
// its embedded default: a box that rolled back to work would not. So
// Apply keeps the file as it was (ConfigBefore), and PID 1 of the old
// firmware puts it back when it finds that the update rolled back
// (RestoreConfig), before the daemon reads it; what the trial left is
// kept beside it (ConfigTrial) for the operator.

// maxConfig bounds the configuration file copied.
const maxConfig = 1 << 20

// ConfigBefore is the configuration as it was when the update was
// applied; ConfigTrial what the trial left, once restored over.
func ConfigBefore(dataDir string) string {
	return filepath.Join(dataDir, "update", "config-before.yaml")
}
func ConfigTrial(dataDir string) string { return filepath.Join(dataDir, "update", "config-trial.yaml") }

// snapshotConfig keeps configPath as ConfigBefore ("" or no file: none
// kept, and a stale copy is removed).
func snapshotConfig(dataDir, configPath string) error {
	dst := ConfigBefore(dataDir)
	b, err := readBounded(configPath)
	if configPath == "" || errors.Is(err, fs.ErrNotExist) {
		if err := os.Remove(dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("update: configuration: %w", err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	return writeDurable(dst, b)
}

// RestoreConfig runs in PID 1 before the daemon starts, on a boot that
// is not a trial: when the last update was pending or on trial in the
// other slot and GRUB has no try left (it rolled back, CheckRollback's
// condition), the configuration kept at apply time replaces configPath
// if they differ, and what was there is kept as ConfigTrial. It
// reports whether it restored.
func RestoreConfig(dataDir, envPath, configPath string, boot Boot) (bool, error) {
	s, err := ReadState(dataDir)
	if err != nil || s == nil || boot.Trial || s.Slot == boot.Slot || (s.Phase != PhasePending && s.Phase != PhaseTrial) {
		return false, err
	}
	if env, err := ReadEnv(envPath); err != nil || env["try"] != "" {
		return false, err
	}
	before, err := readBounded(ConfigBefore(dataDir))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	now, err := readBounded(configPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if bytes.Equal(now, before) {
		return false, nil
	}
	if err == nil {
		if err := writeDurable(ConfigTrial(dataDir), now); err != nil {
			return false, err
		}
	}
	if err := writeDurable(configPath, before); err != nil {
		return false, err
	}
	s.ConfigRestored = true
	return true, WriteState(dataDir, s)
}

// readBounded reads a file of at most maxConfig bytes.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfig+1))
	if err != nil {
		return nil, fmt.Errorf("update: configuration %s: %w", path, err)
	}
	if len(b) > maxConfig {
		return nil, fmt.Errorf("update: configuration %s: over %d bytes", path, maxConfig)
	}
	return b, nil
}

// writeDurable replaces path with b (mode 0600) atomically and syncs it.
func writeDurable(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("update: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	_, werr := f.Write(b)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("update: writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("update: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
