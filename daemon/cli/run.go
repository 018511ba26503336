package cli

import (
	"context"
	"flag"
	"fmt"

	"github.com/sipedge/sipedge/daemon/app"
	"github.com/sipedge/sipedge/daemon/version"
)

func runDaemon(ctx context.Context, env Env) int {
	fs := flag.NewFlagSet("sipedge run", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	cfgPath := fs.String("config", "", "configuration file (default: $SIPEDGE_CONFIG, "+DefaultConfigPath+", else the embedded default)")
	if err := fs.Parse(env.Args); err != nil {
		return 2
	}
	path := configPath(*cfgPath, env.Getenv)
	if err := app.Run(ctx, app.Options{ConfigPath: path, LogOutput: env.Stderr}); err != nil {
		fmt.Fprintf(env.Stderr, "sipedge run: %v\n", err)
		return 1
	}
	return 0
}

func runVersion(_ context.Context, env Env) int {
	fmt.Fprintf(env.Stdout, "sipedge %s (%s)\n", version.Version, version.Go())
	return 0
}
