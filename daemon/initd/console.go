package initd

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/sipedge/sipedge/daemon/ctl"
)

// DebugConsole returns a Debug hook that reads commands, one per line,
// from in (/dev/console: the profile's log port, never the operator's
// menu port) and answers on out. It is meant for the
// lab (PID 1 enables it only with sipedge.debug=1 on the kernel command
// line): the QEMU test uses it to freeze the daemon and power off.
//
//	sipedge-pid       print the daemon's pid
//	sipedge-freeze    SIGSTOP the daemon (the watchdog must reset the box)
//	sipedge-kill      SIGKILL the daemon (PID 1 must clean up and restart it)
//	sipedge-poweroff  power the machine off
//	sipedge-ctl METHOD [JSON]  call the daemon's control method on socket
//	                  and print its answer (the lab has no shell)
func DebugConsole(in io.Reader, out io.Writer, socket string) func(ctx context.Context, s *Supervisor) {
	return func(ctx context.Context, s *Supervisor) {
		sc := bufio.NewScanner(in)
		for sc.Scan() && ctx.Err() == nil {
			cmd := strings.TrimSpace(sc.Text())
			pid := s.DaemonPID()
			if method, params, ok := strings.Cut(cmd+" ", " "); ok && method == "sipedge-ctl" {
				go debugCtl(ctx, out, socket, strings.TrimSpace(params))
				continue
			}
			switch cmd {
			case "sipedge-pid":
				fmt.Fprintf(out, "CONSOLE daemon pid=%d starts=%d\n", pid, s.Starts())
			case "sipedge-freeze", "sipedge-kill":
				sig, name := syscall.SIGSTOP, "SIGSTOP"
				if cmd == "sipedge-kill" {
					sig, name = syscall.SIGKILL, "SIGKILL"
				}
				if pid == 0 {
					fmt.Fprintln(out, "CONSOLE no daemon running")
					continue
				}
				err := syscall.Kill(pid, sig)
				fmt.Fprintf(out, "CONSOLE %s pid=%d err=%v\n", name, pid, err)
			case "sipedge-poweroff":
				fmt.Fprintln(out, "CONSOLE powering off")
				if err := Reboot(true); err != nil {
					fmt.Fprintf(out, "CONSOLE poweroff: %v\n", err)
				}
			}
		}
	}
}

// debugCtl calls one control method ("METHOD [JSON]") and prints the
// answer on one line.
func debugCtl(ctx context.Context, out io.Writer, socket, line string) {
	method, params, _ := strings.Cut(line, " ")
	var p any
	if params = strings.TrimSpace(params); params != "" {
		p = json.RawMessage(params)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	raw, err := ctl.CallRaw(ctx, socket, method, p)
	if err != nil {
		fmt.Fprintf(out, "CONSOLE ctl %s error: %v\n", method, err)
		return
	}
	fmt.Fprintf(out, "CONSOLE ctl %s ok: %s\n", method, raw)
}

// KernelArg reports whether the kernel command line (/proc/cmdline)
// holds the word arg.
func KernelArg(arg string) bool {
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return false
	}
	for _, w := range strings.Fields(string(b)) {
		if w == arg {
			return true
		}
	}
	return false
}
