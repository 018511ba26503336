package initd

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// SysMount is the Mounter of the running system.
func SysMount(source, target, fstype string, flags uintptr, data string) error {
	return unix.Mount(source, target, fstype, flags, data)
}

// FinitModule is the ModuleLoader of the running system.
func FinitModule(path, params string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	err = unix.FinitModule(int(f.Fd()), params, 0)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EEXIST):
		return ErrModuleLoaded
	case errors.Is(err, unix.ENODEV):
		return fmt.Errorf("%s: %w", path, ErrNoDevice)
	}
	return fmt.Errorf("finit_module %s: %w", path, err)
}

// Reboot syncs the disks and restarts (or powers off) the machine.
func Reboot(powerOff bool) error {
	unix.Sync()
	cmd := unix.LINUX_REBOOT_CMD_RESTART
	if powerOff {
		cmd = unix.LINUX_REBOOT_CMD_POWER_OFF
	}
	return unix.Reboot(cmd)
}
