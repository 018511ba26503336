package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// target is a balancer under test: Kamailio (the baseline) or sipedge.
type target struct {
	name string
	port int
	cmd  *exec.Cmd
	done chan struct{}
	// goroutines returns the live goroutine count (sipedge only).
	goroutines func() int
	// ctl runs `sipedge ctl -json WORDS...` and decodes the answer into v
	// (sipedge only).
	ctl func(v any, words ...string) error
	// downs counts the Cores the balancer marked down so far, and refused
	// the calls it refused because no Core was left to take them.
	downs func() (downs, noCore int)
	// sidePorts are sipedge's Core-facing UDP ports (none for Kamailio,
	// or a sipedge without them).
	sidePorts func() []int
	log       string
}

func (t *target) pid() int { return t.cmd.Process.Pid }

func (t *target) stop() {
	t.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-t.done:
	case <-time.After(15 * time.Second):
		t.cmd.Process.Kill()
		<-t.done
	}
}

const kamailioCfg = `#!KAMAILIO
debug=1
log_stderror=yes
children=2
maxbuffer=8388608
auto_aliases=no
listen=udp:127.0.0.1:%d
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "dispatcher.so"
loadmodule "xlog.so"
modparam("dispatcher", "list_file", "%s")
modparam("dispatcher", "ds_ping_interval", 5)
modparam("dispatcher", "ds_probing_mode", 1)
modparam("tm", "fr_timer", 2000)

request_route {
	if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
	if (has_totag()) {
		if (loose_route()) { t_relay(); exit; }
		if (is_method("ACK")) { if (t_check_trans()) { t_relay(); } exit; }
		sl_send_reply("404", "Not here");
		exit;
	}
	if (is_method("CANCEL")) { if (t_check_trans()) { t_relay(); } exit; }
	t_check_trans();
	record_route();
	if (!ds_select_dst("1", "4")) { xlog("L_ERR", "BENCH-NO-CORE\n"); sl_send_reply("503", "No Core"); exit; }
	t_on_failure("RETRY");
	t_relay();
}

failure_route[RETRY] {
	if (t_is_canceled()) { exit; }
	if (t_check_status("408|500|503")) {
		xlog("L_ERR", "BENCH-CORE-DOWN $du\n");
		ds_mark_dst("ip");
		if (ds_next_dst()) { t_on_failure("RETRY"); t_relay(); }
	}
}
`

func startKamailio(dir string, port int, cores []int) (*target, error) {
	list := filepath.Join(dir, "dispatcher.list")
	var b strings.Builder
	for _, c := range cores {
		fmt.Fprintf(&b, "1 sip:127.0.0.1:%d\n", c)
	}
	if err := os.WriteFile(list, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "kamailio.cfg")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(kamailioCfg, port, list)), 0o644); err != nil {
		return nil, err
	}
	t := &target{name: "kamailio", port: port, done: make(chan struct{}), log: filepath.Join(dir, "kamailio.log")}
	t.cmd = exec.Command("kamailio", "-DD", "-E", "-f", cfg, "-x", "tlsf", "-m", "1024", "-M", "16", "-Y", dir, "-w", dir)
	t.sidePorts = func() []int { return nil }
	t.downs = func() (int, int) {
		b, _ := os.ReadFile(t.log)
		return strings.Count(string(b), "BENCH-CORE-DOWN"), strings.Count(string(b), "BENCH-NO-CORE")
	}
	return t, t.start(dir)
}

func (t *target) start(dir string) error {
	log, err := os.Create(filepath.Join(dir, t.name+".log"))
	if err != nil {
		return err
	}
	t.cmd.Stdout, t.cmd.Stderr = log, log
	if err := t.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", t.name, err)
	}
	track(t.cmd)
	go func() { t.cmd.Wait(); untrack(t.cmd); log.Close(); close(t.done) }()
	time.Sleep(1500 * time.Millisecond)
	select {
	case <-t.done:
		b, _ := os.ReadFile(filepath.Join(dir, t.name+".log"))
		return fmt.Errorf("%s exited at start:\n%s", t.name, b)
	default:
	}
	return nil
}

// sipedgeStream is what the stream rows (stream.go) add to sipedge's
// configuration: tcp and tls listeners beside the udp one, the TLS
// certificate, and the TCP caps raised for the idle rows' connections
// (the defaults, 2048 and 64 per source, would refuse them).
type sipedgeStream struct {
	TCPPort, TLSPort int
	Cert, Key        string
	MaxConns         int // sip.tcp.max_connections and max_per_source (<= 16384)
}

// sipedgeYAML is sipedge's configuration for the bench: udp on port
// (and, with st, tcp and tls), round robin over the Cores, callers on
// trustedIP trusted, flood bans off.
func sipedgeYAML(dataDir string, port int, cores []int, extraSIP string, st *sipedgeStream) string {
	var b strings.Builder
	fmt.Fprintf(&b, "node: {name: bench, profile: single, data_dir: %s}\n", dataDir)
	fmt.Fprintf(&b, "log: {level: warn, format: json}\n")
	listen := fmt.Sprintf("\"udp:127.0.0.1:%d\"", port)
	if st != nil {
		listen += fmt.Sprintf(", \"tcp:127.0.0.1:%d\", \"tls:127.0.0.1:%d\"", st.TCPPort, st.TLSPort)
	}
	fmt.Fprintf(&b, "sip:\n  listen: [%s]\n  algorithm: round-robin\n", listen)
	if st != nil {
		fmt.Fprintf(&b, "  tls: {certificates: [{cert: %q, key: %q}]}\n", st.Cert, st.Key)
		fmt.Fprintf(&b, "  tcp: {max_connections: %d, max_per_source: %d}\n", st.MaxConns, st.MaxConns)
	}
	b.WriteString("  cores:\n")
	for i, c := range cores {
		fmt.Fprintf(&b, "    - {name: core%d, address: \"127.0.0.1:%d\"}\n", i+1, c)
	}
	if extraSIP != "" {
		fmt.Fprintf(&b, "  %s\n", extraSIP)
	}
	// Callers on 127.0.0.1 are the box itself (trusted); those of the
	// sources run on 127.0.0.2 are strangers, under the routing policy
	// (security.relay: dialogs) and not banned as a flood.
	fmt.Fprintf(&b, "security: {trusted: [\"%s/32\"], flood: {requests: 0}}\n", trustedIP)
	return b.String()
}

// startSipedge starts sipedge on udp port (st: with the stream rows'
// listeners and caps, see sipedgeStream).
func startSipedge(dir, bin string, port int, cores []int, extraEnv []string, extraSIP string, st *sipedgeStream) (*target, error) {
	cfg := filepath.Join(dir, "sipedge.yaml")
	if err := os.WriteFile(cfg, []byte(sipedgeYAML(filepath.Join(dir, "data"), port, cores, extraSIP, st)), 0o644); err != nil {
		return nil, err
	}
	t := &target{name: "sipedge", port: port, done: make(chan struct{}), log: filepath.Join(dir, "sipedge.log")}
	socket := filepath.Join(dir, "data", "sipedge.sock")
	t.cmd = exec.Command(bin, "run", "-config", cfg)
	t.cmd.Env = append(os.Environ(), extraEnv...)
	t.ctl = func(v any, words ...string) error {
		out, err := exec.Command(bin, append([]string{"ctl", "-socket", socket, "-json"}, words...)...).Output()
		if err != nil {
			return fmt.Errorf("ctl %s: %w", strings.Join(words, " "), err)
		}
		if v == nil {
			return nil
		}
		return json.Unmarshal(out, v)
	}
	t.goroutines = func() int {
		var r struct{ Goroutines int }
		if t.ctl(&r, "runtime") != nil {
			return -1
		}
		return r.Goroutines
	}
	t.sidePorts = func() []int {
		var st struct {
			CoreSide []string `json:"core_side"`
		}
		t.ctl(&st, "cores")
		var ports []int
		for _, a := range st.CoreSide {
			if ap, err := netip.ParseAddrPort(strings.TrimPrefix(a, "udp:")); err == nil {
				ports = append(ports, int(ap.Port()))
			}
		}
		return ports
	}
	t.downs = func() (int, int) {
		var ev []struct{ Kind string }
		t.ctl(&ev, "events", "1000")
		n := 0
		for _, e := range ev {
			if e.Kind == "core.down" {
				n++
			}
		}
		var st struct{ Stats map[string]int }
		t.ctl(&st, "cores")
		return n, st.Stats["no_core"]
	}
	return t, t.start(dir)
}

// mallocs is the daemon's runtime.MemStats.Mallocs (sipedge only).
func (t *target) mallocs() int64 {
	var r struct{ Mallocs int64 }
	if t.ctl == nil || t.ctl(&r, "runtime") != nil {
		return 0
	}
	return r.Mallocs
}

// shed counts the INVITEs the balancer refused with 503 by its own
// admission control (sipedge only).
func (t *target) shed() int {
	var st struct{ Stats map[string]int }
	if t.ctl == nil || t.ctl(&st, "cores") != nil {
		return 0
	}
	return st.Stats["shed"]
}

// received counts the messages the balancer read (sipedge only).
func (t *target) received() int {
	var st struct{ Stats map[string]int }
	if t.ctl == nil || t.ctl(&st, "cores") != nil {
		return 0
	}
	return st.Stats["received"]
}

// dialogCount is the number of dialogs in the balancer's table.
func (t *target) dialogCount() int {
	var st struct{ Dialogs int }
	if t.ctl == nil || t.ctl(&st, "cores") != nil {
		return 0
	}
	return st.Dialogs
}
