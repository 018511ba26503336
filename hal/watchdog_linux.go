package hal

import (
	"fmt"
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DeviceWatchdog is a Linux watchdog character device (/dev/watchdog).
type DeviceWatchdog struct {
	mu   sync.Mutex
	f    *os.File
	path string
}

var _ Watchdog = (*DeviceWatchdog)(nil)

// OpenWatchdog opens and so arms the watchdog at path (e.g.
// /dev/watchdog). If timeout is not zero it is set at once.
func OpenWatchdog(path string, timeout time.Duration) (*DeviceWatchdog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("hal: open watchdog %s: %w: %w", path, err, ErrUnsupported)
		}
		return nil, fmt.Errorf("hal: open watchdog %s: %w", path, err)
	}
	w := &DeviceWatchdog{f: f, path: path}
	if timeout > 0 {
		if err := w.SetTimeout(timeout); err != nil {
			w.Abandon()
			return nil, err
		}
	}
	return w, nil
}

func (w *DeviceWatchdog) ioctlInt(req uint, v *int32) error {
	if w.f == nil {
		return fmt.Errorf("hal: watchdog %s: closed", w.path)
	}
	rc, err := w.f.SyscallConn()
	if err != nil {
		return err
	}
	var errno unix.Errno
	err = rc.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, uintptr(req), uintptr(unsafe.Pointer(v)))
	})
	if err != nil {
		return err
	}
	if errno != 0 {
		return errno
	}
	return nil
}

// Keepalive pings the watchdog (WDIOC_KEEPALIVE).
func (w *DeviceWatchdog) Keepalive() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var dummy int32
	if err := w.ioctlInt(unix.WDIOC_KEEPALIVE, &dummy); err != nil {
		return fmt.Errorf("hal: watchdog keepalive: %w", err)
	}
	return nil
}

// SetTimeout sets the timeout in whole seconds (WDIOC_SETTIMEOUT); the
// driver may round it, Timeout reads what it chose.
func (w *DeviceWatchdog) SetTimeout(d time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := int32((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	if err := w.ioctlInt(unix.WDIOC_SETTIMEOUT, &s); err != nil {
		return fmt.Errorf("hal: watchdog set timeout %v: %w", d, err)
	}
	return nil
}

// Timeout reads the timeout (WDIOC_GETTIMEOUT).
func (w *DeviceWatchdog) Timeout() (time.Duration, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var s int32
	if err := w.ioctlInt(unix.WDIOC_GETTIMEOUT, &s); err != nil {
		return 0, fmt.Errorf("hal: watchdog get timeout: %w", err)
	}
	return time.Duration(s) * time.Second, nil
}

// BootStatus reports WDIOF_CARDRESET from WDIOC_GETBOOTSTATUS.
func (w *DeviceWatchdog) BootStatus() (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var s int32
	if err := w.ioctlInt(unix.WDIOC_GETBOOTSTATUS, &s); err != nil {
		return false, fmt.Errorf("hal: watchdog boot status: %w", err)
	}
	return s&wdiofCardReset != 0, nil
}

// Close writes the magic 'V' and closes: the driver disarms the watchdog
// (unless built with nowayout).
func (w *DeviceWatchdog) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	_, werr := w.f.Write([]byte("V"))
	cerr := w.f.Close()
	w.f = nil
	if werr != nil {
		return fmt.Errorf("hal: watchdog magic close: %w", werr)
	}
	return cerr
}

// Abandon closes without the magic character: the watchdog stays armed.
func (w *DeviceWatchdog) Abandon() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}
