package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/sipedge/sipedge/daemon/console"
	"github.com/sipedge/sipedge/daemon/ctl"
	"github.com/sipedge/sipedge/daemon/web"
)

// webCommands are the `ctl web ...` commands.
func webCommands() []ctlCommand {
	return []ctlCommand{
		{words: "web", help: "the web server: URL, certificate fingerprint (SHA-256) to pin, access lists, alarms", method: web.MethodWeb, print: printWeb},
		{words: "web password", help: "set the web password (read from the terminal, or one line of stdin)", local: setWebPassword},
	}
}

func printWeb(w io.Writer, raw json.RawMessage) error {
	in, err := decode[web.Info](raw)
	if err != nil {
		return err
	}
	if in.Scheme == "off" {
		fmt.Fprintln(w, "web:          off (web.listen is not set)")
		return nil
	}
	fmt.Fprintf(w, "web:          %s\n", in.URL)
	if in.TLSFingerprint != "" {
		fmt.Fprintf(w, "certificate:  %s, valid until %s\n", in.TLSSource, in.TLSNotAfter.Format(time.DateOnly))
		fmt.Fprintf(w, "SHA-256:      %s\n", in.TLSFingerprint)
		fmt.Fprintf(w, "HSTS:         %v\n", in.HSTS)
	} else {
		fmt.Fprintln(w, "certificate:  none (plain HTTP)")
	}
	fmt.Fprintf(w, "open to:      %s\n", prefixes(in.OpenTo, "loopback"))
	act := prefixes(in.AdminFrom, "loopback") + " (and loopback)"
	if in.OpenToActs {
		act += ", and every open_to network (web.admin_from not set)"
	}
	fmt.Fprintf(w, "admin from:   %s\n", act)
	if len(in.Names) > 0 {
		fmt.Fprintf(w, "names:        %s\n", strings.Join(in.Names, ", "))
	}
	for _, x := range in.Warnings {
		fmt.Fprintf(w, "WARNING:      %s: %s\n", x.Setting, x.Message)
	}
	return nil
}

func prefixes(ps []netip.Prefix, none string) string {
	if len(ps) == 0 {
		return none
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// setWebPassword reads the password without echo on a terminal (twice)
// or as one line of stdin, never from the command line (ps would show it).
func setWebPassword(ctx context.Context, env Env, cfgPath string, args []string) int {
	if len(args) > 0 {
		fmt.Fprintln(env.Stderr, "usage: sipedge ctl web password   (the password is read from the terminal or stdin, not from arguments)")
		return 2
	}
	sock, err := consoleSocket("", cfgPath)
	if err != nil {
		fmt.Fprintf(env.Stderr, "sipedge ctl: %v\n", err)
		return 2
	}
	var pw string
	if f, ok := env.Stdin.(*os.File); ok && console.IsTerminal(f) {
		p1, err := console.ReadPassword(f, env.Stderr, "New web password: ")
		if err != nil {
			return 1
		}
		p2, err := console.ReadPassword(f, env.Stderr, "Again: ")
		if err != nil {
			return 1
		}
		if p1 != p2 {
			fmt.Fprintln(env.Stderr, "sipedge ctl: the two passwords differ; nothing changed")
			return 1
		}
		pw = p1
	} else {
		line, err := bufio.NewReader(env.Stdin).ReadString('\n')
		if err != nil && line == "" {
			fmt.Fprintln(env.Stderr, "sipedge ctl: no password on stdin")
			return 2
		}
		pw = strings.TrimRight(line, "\r\n")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := ctl.Call(ctx, sock, "web.password", map[string]string{"password": pw}, nil); err != nil {
		fmt.Fprintln(env.Stderr, ctl.String(err))
		return ctl.ExitCode(err)
	}
	fmt.Fprintln(env.Stdout, "web password set")
	return 0
}
