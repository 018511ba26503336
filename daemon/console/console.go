package console

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Width and Height are the terminal the console is written for.
const (
	Width  = 80
	Height = 24
)

// Options configure a console session.
type Options struct {
	In  io.Reader
	Out io.Writer
	// TTY, if set and a terminal, is put in raw-ish mode for the session.
	TTY    *os.File
	Client Client
	// AllowExit offers "0) Exit" (a console on a serial port has none).
	AllowExit bool
	// Shell is a shell to offer ("" : look for /bin/sh; "-": none).
	Shell    string
	Hostname func() (string, error)
	Logger   *slog.Logger
	// Baud is the line speed Serial sets on its device (0: leave it).
	Baud int
	// DaemonWait: how long the session waits for the daemon to answer
	// before the login and the first banner (0: DaemonWait).
	DaemonWait time.Duration
}

type console struct {
	o      Options
	in     *lineReader
	out    io.Writer
	term   bool
	ctx    context.Context
	method map[string]string
	idle   *idleReader
	// loginRequired: the daemon asks for the password (console.login).
	loginRequired bool
}

// Run shows the banner and the menu until the operator exits (when
// AllowExit) or the input ends.
func Run(ctx context.Context, o Options) error {
	if o.Hostname == nil {
		o.Hostname = os.Hostname
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Shell == "" {
		if fi, err := os.Stat("/bin/sh"); err == nil && !fi.IsDir() {
			o.Shell = "/bin/sh"
		}
	} else if o.Shell == "-" {
		o.Shell = ""
	}
	c := &console{o: o, out: o.Out, ctx: ctx}
	if o.TTY != nil && isTerminal(o.TTY) {
		st, err := makeRawish(o.TTY)
		if err != nil {
			return fmt.Errorf("console: terminal mode: %w", err)
		}
		defer restoreTerm(o.TTY, st)
		c.term = true
	}
	c.idle = newIdleReader(o.In)
	c.in = &lineReader{r: bufio.NewReader(c.idle), out: o.Out, echo: c.term}
	c.waitDaemon()
	loggedIn := false
	for {
		if !loggedIn {
			if !c.login() {
				return nil
			}
			loggedIn = true
			c.banner()
		}
		c.menu()
		choice, err := c.prompt("Enter an option: ")
		if errors.Is(err, errIdle) {
			c.logout("No key for a while: logged out.")
			loggedIn = false
			continue
		}
		if errors.Is(err, ErrCancel) {
			continue
		}
		if err != nil {
			return nil // input closed
		}
		if ctx.Err() != nil {
			return nil
		}
		switch strings.TrimSpace(choice) {
		case "1":
			c.status()
		case "2":
			c.cores()
		case "3":
			c.failover()
		case "4":
			c.management()
		case "5":
			c.webPassword()
		case "6":
			c.ping()
		case "7":
			c.events()
		case "8":
			c.restore()
		case "9":
			c.factoryReset()
		case "10":
			c.reboot()
		case "11":
			c.shell()
		case "12":
			c.updateFirmware() // update.go
		case "0":
			if o.AllowExit {
				c.printf("Bye.\n")
				return nil
			}
			if c.loginRequired {
				c.logout("Logged out.")
				loggedIn = false
				continue
			}
			c.banner()
		case "":
			c.banner()
		default:
			c.printf("No option %q.\n", choice)
		}
	}
}

func (c *console) printf(format string, args ...any) { fmt.Fprintf(c.out, format, args...) }

func (c *console) prompt(p string) (string, error) {
	c.printf("%s", p)
	s, err := c.in.readLine(false)
	return strings.TrimSpace(s), err
}

func (c *console) promptHidden(p string) (string, error) {
	c.printf("%s", p)
	return c.in.readLine(true)
}

// confirm asks a yes/no question; only "y" or "yes" is yes.
func (c *console) confirm(q string) bool {
	a, err := c.prompt(q + " [y/N]: ")
	a = strings.ToLower(a)
	return err == nil && (a == "y" || a == "yes")
}

// call runs a control method with a bounded wait, printing failures.
func (c *console) call(method string, params, result any) bool {
	if c.lacks(method) {
		return false
	}
	wait := 20 * time.Second
	if method == "web.password" {
		// PBKDF2 with 600,000 rounds: seconds on a small box, more than
		// 20 s on an emulated one (QEMU TCG) under load.
		wait = 90 * time.Second
	}
	ctx, cancel := context.WithTimeout(c.ctx, wait)
	defer cancel()
	if err := c.o.Client.Call(ctx, method, params, result); err != nil {
		c.printf("Failed: %v\n", err)
		return false
	}
	return true
}

// available reports whether the daemon has method (asked once per
// session; a daemon that does not answer has none).
func (c *console) available(method string) bool {
	if c.method == nil {
		ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
		defer cancel()
		m := map[string]string{}
		if err := c.o.Client.Call(ctx, "help", nil, &m); err != nil {
			return true // let the call itself say what is wrong
		}
		c.method = m
	}
	_, ok := c.method[method]
	return ok
}

// lacks says so when the daemon does not have method.
func (c *console) lacks(method string) bool {
	if c.available(method) {
		return false
	}
	c.printf("%s: not available on this box.\n", method)
	return true
}

func (c *console) first(methods ...string) string {
	for _, m := range methods {
		if c.available(m) {
			return m
		}
	}
	return methods[0]
}

// page prints text, stopping every screenful; lines are cut to the width.
func (c *console) page(text string) {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	for i, l := range lines {
		if r := []rune(l); len(r) > Width-1 {
			l = string(r[:Width-2]) + ">"
		}
		c.printf("%s\n", l)
		if (i+1)%(Height-2) == 0 && i+1 < len(lines) {
			a, err := c.prompt("-- more: Enter, or q to stop -- ")
			if err != nil || strings.EqualFold(a, "q") {
				return
			}
		}
	}
}

func (c *console) pause() {
	c.prompt("Press Enter to continue. ")
}

func (c *console) menu() {
	items := []string{
		" 1) Status", " 2) Cores", " 3) Failover (VIPs)", " 4) Set management address",
		" 5) Set web password", " 6) Ping a host",
		" 7) Recent events", " 8) Restore previous configuration", " 9) Reset to factory defaults",
		"10) Reboot", "11) Shell", " 0) Exit",
	}
	if c.o.Shell == "" {
		items[10] = "11) Shell (none in this image)"
	}
	if !c.o.AllowExit {
		items[11] = " 0) Show the banner again"
		if c.loginRequired {
			items[11] = " 0) Log out"
		}
	}
	c.printf("\n")
	for i := 0; i < 6; i++ {
		c.printf(" %-38s %s\n", items[i], items[i+6])
	}
	c.printf(" %-38s\n", "12) Update firmware (from a URL)")
	c.printf("\n")
}

// --- menu actions

type coreInfo struct {
	Name      string  `json:"name"`
	Address   string  `json:"address"`
	Weight    int     `json:"weight"`
	MaxCalls  int     `json:"max_calls"`
	State     string  `json:"state"`
	Calls     int64   `json:"calls"`
	LatencyMS float64 `json:"latency_ms"`
}

func (c *console) listCores() {
	var raw json.RawMessage
	if !c.call(c.first("cores", "cores.list"), nil, &raw) {
		return
	}
	var cs []coreInfo
	if json.Unmarshal(raw, &cs) != nil {
		var w struct {
			Cores []coreInfo `json:"cores"`
		}
		json.Unmarshal(raw, &w)
		cs = w.Cores
	}
	if len(cs) == 0 {
		c.printf("No Cores.\n")
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-12s %-22s %-9s %6s %13s %9s\n", "CORE", "ADDRESS", "STATE", "WEIGHT", "ACTIVE/MAX", "PROBE")
	for _, x := range cs {
		max := "-"
		if x.MaxCalls > 0 {
			max = strconv.Itoa(x.MaxCalls)
		}
		fmt.Fprintf(&b, "%-12s %-22s %-9s %6d %13s %7.1fms\n", x.Name, x.Address, x.State, x.Weight, fmt.Sprintf("%d/%s", x.Calls, max), x.LatencyMS)
	}
	c.page(b.String())
}

func (c *console) cores() {
	for {
		c.printf("\nCores:  1) list  2) add  3) drain  4) enable  5) disable  6) remove  0) back\n")
		a, err := c.prompt("Cores> ")
		if err != nil || a == "0" || a == "" {
			return
		}
		switch a {
		case "1":
			c.listCores()
		case "2":
			name, err := c.prompt("Core name: ")
			if err != nil || name == "" {
				continue
			}
			addr, err := c.prompt("Address (IP:port): ")
			if err != nil || addr == "" {
				continue
			}
			p := map[string]any{"name": name, "address": addr}
			if w, err := c.prompt("Weight [1]: "); err != nil {
				continue
			} else if w != "" {
				n, err := strconv.Atoi(w)
				if err != nil || n < 1 {
					c.printf("Weight must be a positive number.\n")
					continue
				}
				p["weight"] = n
			}
			if m, err := c.prompt("Max calls [0 = no limit]: "); err != nil {
				continue
			} else if m != "" {
				n, err := strconv.Atoi(m)
				if err != nil || n < 0 {
					c.printf("Max calls must be a number >= 0.\n")
					continue
				}
				p["max_calls"] = n
			}
			if c.call("cores.add", p, nil) {
				c.printf("Core %s added.\n", name)
			}
		case "3", "4", "5", "6":
			verb := map[string]string{"3": "drain", "4": "enable", "5": "disable", "6": "remove"}[a]
			name, err := c.prompt("Core name: ")
			if err != nil || name == "" {
				continue
			}
			if verb == "remove" && !c.confirm("Remove Core "+name+"?") {
				c.printf("Not removed.\n")
				continue
			}
			if c.call("cores."+verb, map[string]any{"name": name, "core": name}, nil) {
				c.printf("Core %s: %s done.\n", name, verb)
			}
		default:
			c.printf("No option %q.\n", a)
		}
	}
}

func (c *console) showVIPs() {
	var raw json.RawMessage
	if !c.call("vip", nil, &raw) {
		return
	}
	var st struct {
		Groups []struct {
			vipGroup
			TakeoverIn *time.Duration `json:"takeover_in"`
			Peers      []struct {
				Node      string        `json:"node"`
				LastHeard time.Duration `json:"last_heard_ago"`
				Alive     bool          `json:"alive"`
			} `json:"peers"`
		} `json:"groups"`
	}
	json.Unmarshal(raw, &st)
	if len(st.Groups) == 0 {
		c.printf("No VIP groups.\n")
		return
	}
	var b strings.Builder
	for _, g := range st.Groups {
		fmt.Fprintf(&b, "%-8s %-18s role %-6s state %-8s holder %s\n", g.Name, g.Address, g.Role, g.State, g.Holder)
		for _, p := range g.Peers {
			fmt.Fprintf(&b, "         peer %s last heard %s ago (alive %v)\n", p.Node, p.LastHeard.Round(time.Millisecond), p.Alive)
		}
		if g.TakeoverIn != nil {
			fmt.Fprintf(&b, "         takeover in %s\n", g.TakeoverIn.Round(time.Millisecond))
		}
	}
	c.page(b.String())
}

func (c *console) failover() {
	for {
		c.printf("\nFailover:  1) show  2) release a VIP to the peer  3) take over a VIP\n" +
			"           4) end a release or take-over (back to automatic)  0) back\n")
		a, err := c.prompt("Failover> ")
		if err != nil || a == "0" || a == "" {
			return
		}
		switch a {
		case "1":
			c.showVIPs()
		case "2", "3", "4":
			verb := map[string]string{"2": "release", "3": "takeover", "4": "auto"}[a]
			if c.lacks("vip." + verb) {
				continue
			}
			g, err := c.prompt("VIP group: ")
			if err != nil || g == "" {
				continue
			}
			q := map[string]string{
				"release":  "Release VIP group %s?",
				"takeover": "Take over VIP group %s?",
				"auto":     "End the operator's release or take-over of VIP group %s\n(back to priority and failback)?",
			}[verb]
			if !c.confirm(fmt.Sprintf(q, g)) {
				c.printf("Nothing done.\n")
				continue
			}
			if c.call("vip."+verb, map[string]any{"group": g, "name": g}, nil) {
				c.printf("VIP %s: %s done.\n", g, verb)
			}
		default:
			c.printf("No option %q.\n", a)
		}
	}
}

func (c *console) management() {
	c.printf("The new management address is stored as a runtime change;\nthe network subsystem applies it.\n")
	addr, err := c.prompt("Address (CIDR, e.g. 192.0.2.11/24): ")
	if err != nil || addr == "" {
		return
	}
	gw, err := c.prompt("Gateway (empty: none): ")
	if err != nil {
		return
	}
	ifc, err := c.prompt("Interface (empty: as configured): ")
	if err != nil {
		return
	}
	if c.call("management.set", map[string]string{"address": addr, "gateway": gw, "interface": ifc}, nil) {
		c.printf("Management address stored: %s.\n", addr)
	}
}

func (c *console) webPassword() {
	p1, err := c.promptHidden("New web password: ")
	if err != nil {
		return
	}
	p2, err := c.promptHidden("Again: ")
	if err != nil {
		return
	}
	if p1 != p2 {
		c.printf("The two passwords differ; nothing changed.\n")
		return
	}
	if c.call("web.password", map[string]string{"password": p1}, nil) {
		c.printf("Web password set. Web sessions were logged out.\n")
	}
}

func (c *console) ping() {
	host, err := c.prompt("Host to ping: ")
	if err != nil || host == "" {
		return
	}
	Ping(c.ctx, host, 4, time.Second, 2*time.Second, c.out)
}

func (c *console) events() {
	var ev []struct {
		Time    time.Time `json:"time"`
		Kind    string    `json:"kind"`
		Subject string    `json:"subject"`
		Message string    `json:"message"`
	}
	if !c.call("events", map[string]int{"limit": 40}, &ev) {
		return
	}
	if len(ev) == 0 {
		c.printf("No events.\n")
		return
	}
	var b strings.Builder
	for i := len(ev) - 1; i >= 0; i-- {
		e := ev[i]
		fmt.Fprintf(&b, "%s %-18s %-8s %s\n", e.Time.Local().Format("01-02 15:04:05"), e.Kind, e.Subject, e.Message)
	}
	c.page(b.String())
}

func (c *console) restore() {
	c.printf("This puts back the configuration file as it was before the last change\nand reloads it. Restoring twice undoes the restore.\n")
	if !c.confirm("Restore the previous configuration?") {
		c.printf("Nothing done.\n")
		return
	}
	var res map[string]string
	if c.call("config.restore", nil, &res) {
		c.printf("Restored %s and reloaded.\n", res["restored"])
	}
}

func (c *console) factoryReset() {
	c.printf("Reset to factory defaults wipes every runtime change: Cores added,\ndrained or disabled, the web password, the management address set here.\nThe configuration file is kept.\n")
	a, err := c.prompt("Type RESET to confirm, anything else cancels: ")
	if err != nil || a != "RESET" {
		c.printf("Factory reset cancelled.\n")
		return
	}
	if c.call("factory.reset", map[string]any{"confirm": true, "by": "console"}, nil) {
		c.printf("Runtime changes wiped. Reboot (or restart the daemon) to run on the\nconfiguration file alone.\n")
	}
}

func (c *console) reboot() {
	if !c.confirm("Reboot the box now?") {
		c.printf("Not rebooting.\n")
		return
	}
	if c.call("reboot", nil, nil) {
		c.printf("Rebooting...\n")
	}
}

func (c *console) shell() {
	if c.o.Shell == "" {
		c.printf("There is no shell in this image.\n")
		return
	}
	c.printf("Starting %s; exit it to come back to the menu.\n", c.o.Shell)
	cmd := exec.CommandContext(c.ctx, c.o.Shell, "-i")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.o.In, c.out, c.out
	if c.o.TTY != nil {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = c.o.TTY, c.o.TTY, c.o.TTY
	}
	if err := c.runCooked(cmd); err != nil {
		c.printf("Shell: %v\n", err)
	}
}

// runCooked runs cmd with the terminal back in its normal mode.
func (c *console) runCooked(cmd *exec.Cmd) error {
	if !c.term {
		return cmd.Run()
	}
	if err := setCooked(c.o.TTY); err != nil {
		return err
	}
	defer makeRawish(c.o.TTY)
	return cmd.Run()
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}
