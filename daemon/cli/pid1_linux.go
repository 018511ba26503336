package cli

import (
	"context"
	"os"
	"strconv"

	"github.com/sipedge/sipedge/daemon/config"
	"github.com/sipedge/sipedge/daemon/initd"
	"github.com/sipedge/sipedge/platform"
)

// runPID1 is what sipedge does when the kernel starts it as /init: the
// init duties, then it supervises the daemon, a re-exec of itself with
// "run" (daemon/initd), and keeps the operator's console menu running on
// the board profile's console port (`sipedge console -serial`). The
// kernel, PID 1 and the daemon log to /dev/console, the profile's log
// port; with sipedge.debug=1 on the kernel command line the lab's debug
// hooks (initd.DebugConsole) listen there too. It never returns.
func runPID1(ctx context.Context) int {
	o := initd.Options{
		ConfigPath: DefaultConfigPath,
		DaemonArgs: []string{"run", "-config", DefaultConfigPath},
		SerialConsole: func(p *platform.Profile) []string {
			return []string{"console", "-config", DefaultConfigPath,
				"-serial", "/dev/" + p.Console.Device, "-baud", strconv.Itoa(p.Console.Baud)}
		},
	}
	// Mounts happen inside Main; the debug hook starts after them, so it
	// reads /proc/cmdline then.
	o.Debug = func(ctx context.Context, s *initd.Supervisor) {
		if initd.KernelArg("sipedge.debug=1") {
			socket := config.Default().SocketPath()
			if cfg, err := config.Load(DefaultConfigPath); err == nil {
				socket = cfg.SocketPath()
			}
			initd.DebugConsole(os.Stdin, os.Stdout, socket)(ctx, s)
		}
	}
	initd.Main(o)
	return 0
}
