package cli

import (
	"context"
	"os"

	"github.com/sipedge/sipedge/daemon/initd"
)

// When the kernel starts sipedge as /init (pid 1), it does the init
// duties and supervises the daemon, a re-exec of itself with "run"
// (daemon/initd). This runs before main and never returns.
func init() {
	if os.Getpid() != 1 {
		return
	}
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
}
