package initd

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// DiskLayout is where PID 1 finds the A/B disk's partitions (see
// platform/image/disk.go and daemon/update).
type DiskLayout struct {
	Boot, Data string // partition devices, e.g. /dev/vda1, /dev/vda4
}

// DataMount is what happened to the data partition.
type DataMount struct {
	// Persistent is true when the data directory is the data partition;
	// false: a tmpfs (nothing survives a reboot, no trial commits).
	Persistent bool
	// Seeded is true when the config was copied from the image to the
	// data partition (its first boot).
	Seeded bool
	Err    error // why the partition is not mounted
}

// waitFor waits up to d for path to exist (devtmpfs creates partition
// nodes as the kernel scans the disk).
func waitFor(path string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		_, err := os.Stat(path)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// MountDisk mounts the data partition (ext4) on dataDir, else a tmpfs
// there (said loudly: the caller logs Err), and the boot partition on
// bootDir. On the data partition, configDir (/etc/sipedge) moves there:
// seeded from the image's on the first boot, then bind-mounted over the
// image's, so the config, keys and store survive every update.
func MountDisk(d DiskLayout, dataDir, bootDir, configDir string, mount Mounter) DataMount {
	var dm DataMount
	err := waitFor(d.Data, 5*time.Second)
	if err == nil {
		err = mountOn(d.Data, dataDir, "ext4", MSNoSuid|MSNoDev|MSRelatime, "", mount)
	}
	if err != nil {
		dm.Err = fmt.Errorf("initd: data partition %s: %w", d.Data, err)
		if terr := mountOn("tmpfs", dataDir, "tmpfs", MSNoSuid|MSNoDev, "mode=0700,size=64m", mount); terr != nil {
			dm.Err = errors.Join(dm.Err, terr)
		}
		return dm
	}
	dm.Persistent = true
	if err := waitFor(d.Boot, 5*time.Second); err == nil {
		err = mountOn(d.Boot, bootDir, "ext4", MSNoSuid|MSNoDev|MSNoExec, "", mount)
		if err != nil {
			dm.Err = fmt.Errorf("initd: boot partition %s: %w", d.Boot, err)
		}
	} else {
		dm.Err = fmt.Errorf("initd: boot partition %s: %w", d.Boot, err)
	}
	kept := filepath.Join(dataDir, configDir)
	if _, err := os.Stat(kept); errors.Is(err, fs.ErrNotExist) {
		if err := copyTree(configDir, kept); err != nil {
			dm.Err = errors.Join(dm.Err, fmt.Errorf("initd: seeding %s: %w", kept, err))
			return dm
		}
		dm.Seeded = true
	}
	const msBind = 0x1000
	if err := mount(kept, configDir, "", msBind, ""); err != nil {
		dm.Err = errors.Join(dm.Err, fmt.Errorf("initd: bind %s on %s: %w", kept, configDir, err))
	}
	return dm
}

func mountOn(src, target, fstype string, flags uintptr, data string, mount Mounter) error {
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	return mount(src, target, fstype, flags, data)
}

// copyTree copies the regular files under src to dst, keeping modes
// (a key stays 0600), and syncs them.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(out, info.Mode().Perm())
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, info.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := f.Write(b); err != nil {
			f.Close()
			return err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
}
