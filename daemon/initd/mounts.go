package initd

import (
	"errors"
	"fmt"
	"os"
)

// Mount is one entry of the mount table.
type Mount struct {
	Source, Target, FSType string
	Flags                  uintptr
	Data                   string
	// Optional entries may fail (e.g. a data partition that is absent).
	Optional bool
}

// Mount flags (the Linux values, so the table is testable anywhere).
const (
	MSNoSuid   = 0x2
	MSNoDev    = 0x4
	MSNoExec   = 0x8
	MSRelatime = 0x200000
)

// MountTable returns what PID 1 mounts, in order. dataDir is the
// store's directory (config node.data_dir); dataDev, if not empty, is a
// block device holding an ext4 data partition, else dataDir is a tmpfs
// (the store then lives only until the next boot).
func MountTable(dataDir, dataDev string) []Mount {
	t := []Mount{
		{Source: "proc", Target: "/proc", FSType: "proc", Flags: MSNoSuid | MSNoDev | MSNoExec},
		{Source: "sysfs", Target: "/sys", FSType: "sysfs", Flags: MSNoSuid | MSNoDev | MSNoExec},
		{Source: "devtmpfs", Target: "/dev", FSType: "devtmpfs", Flags: MSNoSuid, Data: "mode=0755"},
		{Source: "devpts", Target: "/dev/pts", FSType: "devpts", Flags: MSNoSuid | MSNoExec, Data: "gid=5,mode=0620,ptmxmode=0666", Optional: true},
		{Source: "tmpfs", Target: "/run", FSType: "tmpfs", Flags: MSNoSuid | MSNoDev, Data: "mode=0755,size=16m"},
		{Source: "tmpfs", Target: "/tmp", FSType: "tmpfs", Flags: MSNoSuid | MSNoDev, Data: "mode=1777,size=64m"},
	}
	if dataDir == "" {
		return t
	}
	if dataDev != "" {
		t = append(t, Mount{Source: dataDev, Target: dataDir, FSType: "ext4", Flags: MSNoSuid | MSNoDev | MSRelatime, Optional: true})
	}
	// The tmpfs fallback: mounted only if the partition did not mount.
	t = append(t, Mount{Source: "tmpfs", Target: dataDir, FSType: "tmpfs", Flags: MSNoSuid | MSNoDev, Data: "mode=0700,size=64m"})
	return t
}

// Mounter performs one mount(2); tests pass a fake.
type Mounter func(source, target, fstype string, flags uintptr, data string) error

// MountAll creates each target and mounts the table in order. A target
// that already has something mounted on it by an earlier entry (the data
// partition) is not mounted twice. Failures of optional entries are
// returned in skipped; the first failure of a required one stops.
func MountAll(table []Mount, mount Mounter) (skipped []error, err error) {
	done := map[string]bool{}
	for _, m := range table {
		if done[m.Target] {
			continue
		}
		if err := os.MkdirAll(m.Target, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			if m.Optional {
				skipped = append(skipped, err)
				continue
			}
			return skipped, fmt.Errorf("initd: mkdir %s: %w", m.Target, err)
		}
		if err := mount(m.Source, m.Target, m.FSType, m.Flags, m.Data); err != nil {
			err = fmt.Errorf("initd: mount %s on %s (%s): %w", m.Source, m.Target, m.FSType, err)
			if m.Optional {
				skipped = append(skipped, err)
				continue
			}
			return skipped, err
		}
		done[m.Target] = true
	}
	return skipped, nil
}
