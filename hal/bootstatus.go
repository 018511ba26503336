package hal

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// wdiofCardReset is WDIOF_CARDRESET: the last reboot was caused by the
// watchdog.
const wdiofCardReset = 0x20

// WatchdogBootStatus reads /sys/class/watchdog/<dev>/bootstatus for the
// device node path (e.g. /dev/watchdog -> watchdog0) without opening the
// device, so without arming it. sysRoot is normally "/sys".
func WatchdogBootStatus(sysRoot, devPath string) (watchdogReset bool, err error) {
	name := filepath.Base(devPath)
	if name == "watchdog" {
		name = "watchdog0"
	}
	p := filepath.Join(sysRoot, "class", "watchdog", name, "bootstatus")
	b, err := os.ReadFile(p)
	if err != nil {
		if os.IsNotExist(err) {
			return false, fmt.Errorf("hal: %s: %w", p, ErrUnsupported)
		}
		return false, fmt.Errorf("hal: %w", err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 0, 64)
	if err != nil {
		return false, fmt.Errorf("hal: %s: %w", p, err)
	}
	return v&wdiofCardReset != 0, nil
}
