package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sipedge/sipedge/daemon/app"
	"github.com/sipedge/sipedge/daemon/config"
	"github.com/sipedge/sipedge/daemon/ctl"
)

// ctlCommand is one `sipedge ctl WORDS...` command.
type ctlCommand struct {
	words string // e.g. "cores drain"
	// also is a word that may follow words to the same effect (e.g.
	// "list": `ctl cores list` is `ctl cores`); usage shows it as "[also]".
	also   string
	args   string // usage of the arguments after the words
	help   string
	method string
	// params builds the request from the arguments (nil: none allowed).
	params func(args []string) (any, error)
	// print writes the human form of the result (nil: "ok").
	print func(w io.Writer, result json.RawMessage) error
	// local, if set, runs without a daemon instead of calling method.
	local func(ctx context.Context, env Env, cfgPath string, args []string) int
}

// ctlCommands lists every ctl command; each subsystem's file adds its own.
func ctlCommands() []ctlCommand {
	var cs []ctlCommand
	cs = append(cs, nodeCommands()...)
	cs = append(cs, debugCommands()...)
	cs = append(cs, coreCommands()...)
	cs = append(cs, banCommands()...)
	cs = append(cs, vipCommands()...)
	cs = append(cs, pairCommands()...)
	cs = append(cs, historyCommands()...)
	cs = append(cs, replicaCommands()...)
	cs = append(cs, webCommands()...)
	cs = append(cs, networkCommands()...)
	cs = append(cs, clusterCommands()...)
	cs = append(cs, timeCommands()...)
	cs = append(cs, updateCommands()...)
	return cs
}

func runCtl(ctx context.Context, env Env) int {
	fs := flag.NewFlagSet("sipedge ctl", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	cfgPath := fs.String("config", "", "configuration file, to find the control socket")
	socket := fs.String("socket", "", "control socket (default: from the configuration)")
	asJSON := fs.Bool("json", false, "print the daemon's JSON answer, for scripts")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	fs.Usage = func() { ctlUsage(env.Stderr, fs) }
	if err := fs.Parse(env.Args); err != nil {
		return 2
	}
	args := jsonAfter(fs.Args(), asJSON)
	if len(args) == 0 || args[0] == "help" {
		ctlUsage(env.Stdout, fs)
		return 0
	}
	cmd, rest, ok := findCtl(args)
	if !ok {
		fmt.Fprintf(env.Stderr, "sipedge ctl: unknown command %q (sipedge ctl help)\n", strings.Join(args, " "))
		return 2
	}
	path := configPath(*cfgPath, env.Getenv)
	if cmd.local != nil {
		return cmd.local(ctx, env, path, rest)
	}
	sock := *socket
	if sock == "" {
		cfg, err := app.Load(path)
		if err == nil {
			sock = cfg.SocketPath()
		} else if sock, err = config.SocketPathOf(path); err != nil {
			fmt.Fprintf(env.Stderr, "sipedge ctl: %v\n", err)
			return 2
		} else {
			fmt.Fprintf(env.Stderr, "sipedge ctl: warning: %s has problems (sipedge ctl config validate); using its socket %s\n", path, sock)
		}
	}
	var params any
	if cmd.params != nil {
		p, err := cmd.params(rest)
		if err != nil {
			fmt.Fprintf(env.Stderr, "sipedge ctl %s: %v\nusage: sipedge ctl %s %s\n", cmd.words, err, cmd.words, cmd.args)
			return 2
		}
		params = p
	} else if len(rest) > 0 {
		fmt.Fprintf(env.Stderr, "sipedge ctl %s: takes no arguments\n", cmd.words)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	raw, err := ctl.CallRaw(ctx, sock, cmd.method, params)
	if err != nil {
		if *asJSON {
			json.NewEncoder(env.Stdout).Encode(map[string]any{"ok": false, "error": map[string]string{"code": ctl.CodeOf(err), "message": err.Error()}})
		}
		fmt.Fprintln(env.Stderr, ctl.String(err))
		return ctl.ExitCode(err)
	}
	if *asJSON {
		env.Stdout.Write(indentJSON(raw))
		return 0
	}
	if cmd.print == nil {
		fmt.Fprintln(env.Stdout, "ok")
		return 0
	}
	if err := cmd.print(env.Stdout, raw); err != nil {
		fmt.Fprintf(env.Stderr, "sipedge ctl: %v\n", err)
		return 1
	}
	return 0
}

func indentJSON(raw json.RawMessage) []byte {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return append(raw, '\n')
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	enc.Encode(v)
	return []byte(b.String())
}

// jsonAfter removes -json and --json from the arguments after the
// flags (`sipedge ctl status --json`), setting *asJSON when there was one.
func jsonAfter(args []string, asJSON *bool) []string {
	out := args[:0:0]
	for _, a := range args {
		if a == "-json" || a == "--json" {
			*asJSON = true
			continue
		}
		out = append(out, a)
	}
	return out
}

// findCtl matches the longest command whose words (or words and its
// also word) prefix args.
func findCtl(args []string) (ctlCommand, []string, bool) {
	var best ctlCommand
	n := 0
	for _, c := range ctlCommands() {
		forms := []string{c.words}
		if c.also != "" {
			forms = append(forms, c.words+" "+c.also)
		}
		for _, f := range forms {
			w := strings.Fields(f)
			if len(w) <= len(args) && len(w) > n && strings.Join(args[:len(w)], " ") == f {
				best, n = c, len(w)
			}
		}
	}
	return best, args[n:], n > 0
}

func ctlUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintln(w, "usage: sipedge ctl [-config FILE | -socket PATH] [-json] COMMAND [ARGS] [--json]\n\ncommands:")
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	for _, c := range ctlCommands() {
		words := c.words
		if c.also != "" {
			words += " [" + c.also + "]"
		}
		fmt.Fprintf(tw, "  %s %s\t%s\n", words, c.args, c.help)
	}
	tw.Flush()
	fmt.Fprintln(w, "\n-json (or --json) may also follow the command: sipedge ctl status --json")
	fmt.Fprintln(w, "\nexit codes: 0 ok, 1 failed, 2 usage or bad request, 3 no daemon, 4 not found, 5 refused in the current state\n\noptions:")
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// decode unmarshals a result for a printer.
func decode[T any](raw json.RawMessage) (T, error) {
	var v T
	err := json.Unmarshal(raw, &v)
	return v, err
}

// table writes rows aligned in columns.
func table(w io.Writer, header []string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

// exactly is a params builder for commands with n arguments.
func exactly(n int, build func(args []string) any) func([]string) (any, error) {
	return func(args []string) (any, error) {
		if len(args) != n {
			return nil, fmt.Errorf("want %d argument(s), got %d", n, len(args))
		}
		return build(args), nil
	}
}
