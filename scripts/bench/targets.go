package main

import (
	"encoding/json"
	"fmt"
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
	// coreStats returns the balancer's own per-Core view (sipedge only).
	ctlSocket string
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
	if (!ds_select_dst("1", "4")) { sl_send_reply("503", "No Core"); exit; }
	t_on_failure("RETRY");
	t_relay();
}

failure_route[RETRY] {
	if (t_is_canceled()) { exit; }
	if (t_check_status("408|500|503")) {
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
	t := &target{name: "kamailio", port: port, done: make(chan struct{})}
	t.cmd = exec.Command("kamailio", "-DD", "-E", "-f", cfg, "-x", "tlsf", "-m", "1024", "-M", "16", "-Y", dir, "-w", dir)
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
	go func() { t.cmd.Wait(); log.Close(); close(t.done) }()
	time.Sleep(1500 * time.Millisecond)
	select {
	case <-t.done:
		b, _ := os.ReadFile(filepath.Join(dir, t.name+".log"))
		return fmt.Errorf("%s exited at start:\n%s", t.name, b)
	default:
	}
	return nil
}

func startSipedge(dir, bin string, port int, cores []int) (*target, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "node: {name: bench, profile: single, data_dir: %s}\n", filepath.Join(dir, "data"))
	fmt.Fprintf(&b, "log: {level: warn, format: json}\n")
	fmt.Fprintf(&b, "sip:\n  listen: [\"udp:127.0.0.1:%d\"]\n  algorithm: round-robin\n  cores:\n", port)
	for i, c := range cores {
		fmt.Fprintf(&b, "    - {name: core%d, address: \"127.0.0.1:%d\"}\n", i+1, c)
	}
	cfg := filepath.Join(dir, "sipedge.yaml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	t := &target{name: "sipedge", port: port, done: make(chan struct{}), ctlSocket: filepath.Join(dir, "data", "sipedge.sock")}
	t.cmd = exec.Command(bin, "run", "-config", cfg)
	t.goroutines = func() int {
		out, err := exec.Command(bin, "ctl", "-socket", t.ctlSocket, "-json", "runtime").Output()
		if err != nil {
			return -1
		}
		var r struct{ Goroutines int }
		json.Unmarshal(out, &r)
		return r.Goroutines
	}
	return t, t.start(dir)
}
