package update

import (
	"fmt"
	"os"
	"strings"

	"github.com/sipedge/sipedge/platform/grubenv"
)

// Where the boot and data partitions are mounted (by PID 1).
const (
	BootDir = "/boot"
	EnvPath = BootDir + "/grub/grubenv"
)

// Partition numbers of the disk layout (platform/image/disk.go).
const (
	PartBoot  = 1
	PartSlotA = 2
	PartSlotB = 3
	PartData  = 4
)

// Boot is what the kernel command line (GRUB's grub.cfg) says about this
// boot.
type Boot struct {
	Slot  string // "A" or "B"; empty: not booted from the A/B disk
	Trial bool   // the one-shot trial of a new firmware
}

// ParseCmdline reads sipedge.slot= and sipedge.trial= from a kernel
// command line.
func ParseCmdline(cmdline string) Boot {
	var b Boot
	for _, w := range strings.Fields(cmdline) {
		switch {
		case w == "sipedge.slot=A" || w == "sipedge.slot=B":
			b.Slot = strings.TrimPrefix(w, "sipedge.slot=")
		case w == "sipedge.trial=1":
			b.Trial = true
		}
	}
	return b
}

// ReadBoot reads /proc/cmdline.
func ReadBoot() Boot {
	b, _ := os.ReadFile("/proc/cmdline")
	return ParseCmdline(string(b))
}

// Other is the other slot.
func Other(slot string) string {
	if slot == "B" {
		return "A"
	}
	return "B"
}

// SlotPart is a slot's partition number.
func SlotPart(slot string) int {
	if slot == "B" {
		return PartSlotB
	}
	return PartSlotA
}

// PartPath is partition n of disk: /dev/vda -> /dev/vda2,
// /dev/nvme0n1 -> /dev/nvme0n1p2.
func PartPath(disk string, n int) string {
	if disk != "" && disk[len(disk)-1] >= '0' && disk[len(disk)-1] <= '9' {
		return fmt.Sprintf("%sp%d", disk, n)
	}
	return fmt.Sprintf("%s%d", disk, n)
}

// ReadEnv reads GRUB's environment block.
func ReadEnv(path string) (grubenv.Env, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("update: boot environment: %w", err)
	}
	return grubenv.Parse(b)
}

// EditEnv changes GRUB's environment block in place: the same 1024
// bytes in the same blocks (GRUB's save_env writes there too), then
// fsync.
func EditEnv(path string, edit func(grubenv.Env)) error {
	env, err := ReadEnv(path)
	if err != nil {
		return err
	}
	edit(env)
	b, err := env.Encode()
	if err != nil {
		return fmt.Errorf("update: boot environment: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("update: boot environment: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, 0); err != nil {
		return fmt.Errorf("update: boot environment: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("update: boot environment: %w", err)
	}
	return f.Close()
}
