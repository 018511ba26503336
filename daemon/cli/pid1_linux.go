package cli

import (
	"context"
	"os"

	"github.com/sipedge/sipedge/daemon/initd"
)

// runPID1 is what sipedge does when the kernel starts it as /init: the
// init duties, then it supervises the daemon, a re-exec of itself with
// "run" (daemon/initd). It never returns.
func runPID1(ctx context.Context) int {
	o := initd.Options{
		ConfigPath: DefaultConfigPath,
		DaemonArgs: []string{"run", "-config", DefaultConfigPath},
	}
	// Mounts happen inside Main; the console hook starts after them, so
	// it reads /proc/cmdline then.
	o.Console = func(ctx context.Context, s *initd.Supervisor) {
		if initd.KernelArg("sipedge.debug=1") {
			initd.DebugConsole(os.Stdin, os.Stdout)(ctx, s)
		}
	}
	initd.Main(o)
	return 0
}
