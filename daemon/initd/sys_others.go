//go:build !linux

package initd

import (
	"context"
	"errors"
	"log/slog"

	"github.com/sipedge/sipedge/platform"
)

var errNotLinux = errors.New("initd: PID 1 duties need Linux")

// Options configure Main (Linux only).
type Options struct {
	ConfigPath string
	DaemonArgs []string
	DataDev    string
	// SerialConsole and Debug: see the Linux Options.
	SerialConsole func(p *platform.Profile) []string
	Debug         func(ctx context.Context, s *Supervisor)
	Logger        *slog.Logger
}

// Main panics outside Linux.
func Main(Options) { panic(errNotLinux) }

// SysMount fails outside Linux.
func SysMount(string, string, string, uintptr, string) error { return errNotLinux }

// FinitModule fails outside Linux.
func FinitModule(string, string) error { return errNotLinux }

// Reboot fails outside Linux.
func Reboot(bool) error { return errNotLinux }
