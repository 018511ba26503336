package cli

import (
	"context"
	"fmt"

	"github.com/sipedge/sipedge/daemon/app"
	"github.com/sipedge/sipedge/daemon/config"
)

// clusterCommands are the `ctl cluster` commands; they run without a
// daemon.
func clusterCommands() []ctlCommand {
	return []ctlCommand{
		{words: "cluster keygen", args: "[PATH]", help: "write a new random cluster key, mode 0600 (default: the configuration's cluster.key_file); never overwrites", local: clusterKeygen},
	}
}

func clusterKeygen(_ context.Context, env Env, cfgPath string, args []string) int {
	var path string
	switch len(args) {
	case 0:
		cfg, err := app.Load(cfgPath)
		if err != nil {
			fmt.Fprintf(env.Stderr, "sipedge ctl cluster keygen: %v\n(give the key's path: sipedge ctl cluster keygen PATH)\n", err)
			return 1
		}
		if cfg.Cluster == nil {
			fmt.Fprintf(env.Stderr, "sipedge ctl cluster keygen: %s has no cluster: section; give the key's path: sipedge ctl cluster keygen PATH\n", cfg.Source)
			return 2
		}
		path = cfg.Cluster.KeyFile
	case 1:
		path = args[0]
	default:
		fmt.Fprintln(env.Stderr, "usage: sipedge ctl cluster keygen [PATH]")
		return 2
	}
	if err := config.GenerateClusterKey(path); err != nil {
		fmt.Fprintf(env.Stderr, "sipedge ctl cluster keygen: %v\n", err)
		return 1
	}
	fmt.Fprintf(env.Stdout, "%s: new cluster key (%d random bytes, mode 0600); copy it to the peer box at its cluster.key_file, keeping mode 0600\n", path, config.ClusterKeyBytes)
	return 0
}
