// Package cli is the sipedge command line: `sipedge run`, `sipedge ctl
// ...`, `sipedge version` (and, from their own files, the console and the
// PID 1 init). main only calls Main.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
)

// Env is what a command runs with; tests swap its parts.
type Env struct {
	Args   []string // after the subcommand
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
}

type subcommand struct {
	name, usage string
	run         func(ctx context.Context, env Env) int
}

func subcommands() []subcommand {
	return []subcommand{
		{"run", "run the daemon", runDaemon},
		{"ctl", "control the running daemon (sipedge ctl help)", runCtl},
		{"console", "the serial console menu on this terminal", runConsole},
		{"version", "print the firmware version", runVersion},
	}
}

// Main runs the command line and returns the exit code. As PID 1 (the
// appliance image's /init) it does the init duties and never returns.
func Main(ctx context.Context, args []string) int {
	if os.Getpid() == 1 {
		return runPID1(ctx)
	}
	env := Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	if len(args) < 2 {
		usage(env.Stderr)
		return 2
	}
	for _, s := range subcommands() {
		if s.name == args[1] {
			env.Args = args[2:]
			return s.run(ctx, env)
		}
	}
	if args[1] == "help" || args[1] == "-h" || args[1] == "--help" {
		usage(env.Stdout)
		return 0
	}
	fmt.Fprintf(env.Stderr, "sipedge: unknown command %q\n", args[1])
	usage(env.Stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: sipedge COMMAND [options]\n\ncommands:")
	for _, s := range subcommands() {
		fmt.Fprintf(w, "  %-8s %s\n", s.name, s.usage)
	}
}

// DefaultConfigPath is where the appliance keeps its configuration.
const DefaultConfigPath = "/etc/sipedge/config.yaml"

// configPath resolves which file to use: the -config flag, then
// $SIPEDGE_CONFIG, then /etc/sipedge/config.yaml if it exists; empty
// means the embedded default.
func configPath(flagValue string, getenv func(string) string) string {
	if flagValue != "" {
		return flagValue
	}
	if p := getenv("SIPEDGE_CONFIG"); p != "" {
		return p
	}
	if _, err := os.Stat(DefaultConfigPath); err == nil {
		return DefaultConfigPath
	}
	return ""
}
