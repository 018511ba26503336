package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/sipedge/sipedge/daemon/app"
	"github.com/sipedge/sipedge/daemon/config"
	"github.com/sipedge/sipedge/daemon/console"
)

// runConsole is `sipedge console`: the serial console menu on this
// terminal, or with -serial on a serial port, for ever (PID 1 starts it
// so on the board profile's console port). Ctrl-C and Ctrl-Z do not stop
// it (as on an appliance).
func runConsole(ctx context.Context, env Env) int {
	fs := flag.NewFlagSet("sipedge console", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	cfgPath := fs.String("config", "", "configuration file, to find the control socket")
	socket := fs.String("socket", "", "control socket (default: from the configuration)")
	noExit := fs.Bool("no-exit", false, "offer no Exit (a console on a serial port)")
	shell := fs.String("shell", "", `shell offered by the menu (default /bin/sh if present; "-": none)`)
	serial := fs.String("serial", "", "run on this serial device (e.g. /dev/ttyS0) instead of the terminal, restarting each session, until stopped; implies -no-exit")
	baud := fs.Int("baud", 0, "with -serial: set the line to this speed (e.g. 115200; 0: leave it)")
	if err := fs.Parse(env.Args); err != nil {
		return 2
	}
	sock, err := consoleSocket(*socket, configPath(*cfgPath, env.Getenv))
	if err != nil {
		fmt.Fprintf(env.Stderr, "sipedge console: %v\n", err)
		return 2
	}
	// Signals are caught and dropped rather than ignored, so that a shell
	// started from the menu gets the default behaviour back.
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTSTP, syscall.SIGQUIT)
	defer signal.Stop(sig)
	go func() {
		for range sig {
		}
	}()
	o := console.Options{In: env.Stdin, Out: env.Stdout, Client: console.SocketClient{Path: sock}, AllowExit: !*noExit, Shell: *shell}
	if *serial != "" {
		o.Baud = *baud
		o.Logger = slog.New(slog.NewTextHandler(env.Stderr, nil)).With("subsystem", "console", "device", *serial)
		console.Serial(ctx, *serial, o)
		return 0
	}
	if f, ok := env.Stdin.(*os.File); ok {
		o.TTY = f
	}
	if err := console.Run(ctx, o); err != nil {
		fmt.Fprintf(env.Stderr, "sipedge console: %v\n", err)
		return 1
	}
	return 0
}

// consoleSocket finds the control socket as `sipedge ctl` does.
func consoleSocket(flagSocket, cfgPath string) (string, error) {
	if flagSocket != "" {
		return flagSocket, nil
	}
	cfg, err := app.Load(cfgPath)
	if err == nil {
		return cfg.SocketPath(), nil
	}
	return config.SocketPathOf(cfgPath)
}
