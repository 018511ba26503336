package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/sipedge/sipedge/daemon/app"
	"github.com/sipedge/sipedge/daemon/store"
)

func nodeCommands() []ctlCommand {
	return []ctlCommand{
		{words: "status", help: "the node's state", method: "status", print: printStatus},
		{words: "events", args: "[N]", help: "the N most recent events (default 20)", method: "events",
			params: func(args []string) (any, error) {
				n := 20
				if len(args) > 1 {
					return nil, fmt.Errorf("want at most one argument")
				}
				if len(args) == 1 {
					v, err := strconv.Atoi(args[0])
					if err != nil || v < 1 {
						return nil, fmt.Errorf("N must be a positive number, got %q", args[0])
					}
					n = v
				}
				return map[string]int{"limit": n}, nil
			}, print: printEvents},
		{words: "config show", help: "the effective configuration (file plus defaults)", method: "config.show",
			print: func(w io.Writer, raw json.RawMessage) error {
				v, err := decode[map[string]string](raw)
				fmt.Fprintf(w, "# source: %s\n%s", v["source"], v["yaml"])
				return err
			}},
		{words: "config validate", args: "[FILE]", help: "check a configuration file without a daemon", local: validateConfig},
		{words: "config reload", help: "re-read the configuration file (as SIGHUP)", method: "config.reload"},
		{words: "log level", args: "LEVEL", help: "set the log level (debug, info, warn, error)", method: "log.level",
			params: exactly(1, func(a []string) any { return map[string]string{"level": a[0]} })},
	}
}

func validateConfig(_ context.Context, env Env, cfgPath string, args []string) int {
	path := cfgPath
	if len(args) == 1 {
		path = args[0]
	} else if len(args) > 1 {
		fmt.Fprintln(env.Stderr, "usage: sipedge ctl config validate [FILE]")
		return 2
	}
	cfg, err := app.Load(path)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	bad := false
	if ps := cfg.CheckClusterKey(); len(ps) > 0 {
		fmt.Fprintln(env.Stderr, ps)
		bad = true
	}
	if len(cfg.Warnings) > 0 {
		// Accepted for compatibility (the daemon runs with an alarm),
		// but not a file to deploy.
		fmt.Fprintf(env.Stderr, "%s\n%s: unsafe: the daemon still runs with this file, raising an alarm\n", cfg.Warnings.Error(), cfg.Source)
		bad = true
	}
	if bad {
		return 1
	}
	fmt.Fprintf(env.Stdout, "%s: ok (profile %s, node %s)\n", cfg.Source, cfg.Node.Profile, cfg.Node.Name)
	return 0
}

func printStatus(w io.Writer, raw json.RawMessage) error {
	st, err := decode[app.Status](raw)
	if err != nil {
		return err
	}
	table(w, []string{"NODE", "PROFILE", "VERSION", "UPTIME", "PID"},
		[][]string{{st.Node, st.Profile, st.Version, st.Uptime, strconv.Itoa(st.PID)}})
	fmt.Fprintf(w, "\nconfig:   %s\nlog:      %s\n", st.Config, strings.ToLower(st.LogLevel))
	storeState := "ok"
	if !st.Store.OK {
		storeState = "FAULT: " + st.Store.Error
	}
	fmt.Fprintf(w, "store:    %s (%s)\n", st.Store.Path, storeState)
	for _, al := range st.Alarms {
		fmt.Fprintf(w, "ALARM:    [%s] %s (since %s)\n", al.ID, al.Message, al.Since.Local().Format(time.DateTime))
	}
	if len(st.Subsystems) > 0 {
		fmt.Fprintln(w)
		rows := [][]string{}
		for _, s := range st.Subsystems {
			state := "alive"
			if !s.OK {
				state = "STALE"
			}
			rows = append(rows, []string{s.Name, state, time.Since(s.Last).Round(time.Millisecond).String() + " ago"})
		}
		table(w, []string{"SUBSYSTEM", "STATE", "LAST BEAT"}, rows)
	}
	return nil
}

func printEvents(w io.Writer, raw json.RawMessage) error {
	ev, err := decode[[]store.Event](raw)
	if err != nil {
		return err
	}
	rows := make([][]string, len(ev))
	for i, e := range ev {
		rows[i] = []string{e.Time.Local().Format(time.DateTime), e.Kind, e.Subject, e.Message}
	}
	table(w, []string{"TIME", "EVENT", "SUBJECT", "MESSAGE"}, rows)
	return nil
}

func debugCommands() []ctlCommand {
	return []ctlCommand{
		{words: "runtime", help: "Go runtime figures: goroutines, heap, GC", method: "runtime", print: func(w io.Writer, raw json.RawMessage) error {
			w.Write(indentJSON(raw))
			return nil
		}},
		{words: "debug profile", args: "KIND SECONDS PATH", help: "write a pprof profile (cpu, heap, allocs, goroutine) to PATH on the box", method: "debug.profile",
			params: func(a []string) (any, error) {
				if len(a) != 3 {
					return nil, fmt.Errorf("want KIND SECONDS PATH")
				}
				n, err := strconv.Atoi(a[1])
				if err != nil {
					return nil, fmt.Errorf("SECONDS: %v", err)
				}
				return map[string]any{"kind": a[0], "seconds": n, "path": a[2]}, nil
			}},
	}
}
