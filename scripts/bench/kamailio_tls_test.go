package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sipedge/sipedge/scripts/bench/streamload"
)

func TestKamailioStreamCfg(t *testing.T) {
	dir := t.TempDir()
	cfg, pki, err := writeKamailioStream(dir, 27500, 27501, 27502, 2, []int{27540, 27570})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(cfg)
	for _, want := range []string{"listen=udp:127.0.0.1:27500", "listen=tcp:127.0.0.1:27501", "listen=tls:127.0.0.1:27502",
		`loadmodule "tls.so"`, "tcp_max_connections=12000", "tls_max_connections=12000", "request_route"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("config lacks %q", want)
		}
	}
	if _, err := os.Stat(pki.KeyFile); err != nil {
		t.Error(err)
	}
	if _, err := exec.LookPath("kamailio"); err != nil {
		t.Skip("kamailio not installed: config not checked by it")
	}
	// -c: check the config and exit (loads the modules, tls among them).
	out, err := exec.Command("nice", "-n", "19", "kamailio", "-c", "-f", cfg, "-x", "tlsf", "-m", "64", "-M", "8").CombinedOutput()
	if err != nil {
		t.Fatalf("kamailio -c: %v\n%s", err, out)
	}
}

// startStreamCore is startCore with the control and media ports next to
// the SIP port (the stream test keeps to one port range).
func startStreamCore(t *testing.T, dir string, port int) *sippCore {
	c := &sippCore{port: port, stat: filepath.Join(dir, fmt.Sprintf("core-%d.csv", port)), done: make(chan struct{})}
	scenario, _ := filepath.Abs(filepath.Join("scenarios", "core.xml"))
	c.cmd = exec.Command("sipp", "-sf", scenario, "-i", "127.0.0.1", "-p", strconv.Itoa(port),
		"-cp", strconv.Itoa(port+1), "-mp", strconv.Itoa(port+10),
		"-nostdin", "-timeout", "600s", "-buff_size", "4194304", "-max_recv_loops", "5000",
		"-trace_stat", "-stf", c.stat, "-fd", "1", "-trace_counts")
	c.cmd.Dir = dir
	log, err := os.Create(filepath.Join(dir, fmt.Sprintf("core-%d.log", port)))
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stdout, c.cmd.Stderr = log, log
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	track(c.cmd)
	go func() { c.cmd.Wait(); untrack(c.cmd); log.Close(); close(c.done) }()
	time.Sleep(300 * time.Millisecond)
	if b, _ := os.ReadFile(log.Name()); strings.Contains(string(b), "Unable to bind") {
		c.stop()
		t.Fatalf("core on %d: port in use", port)
	}
	return c
}

// memKiB sums Rss and Pss (smaps_rollup) over the process tree at root.
func memKiB(root int) (rss, pss int64) {
	for _, pid := range procTree(root) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) > 1 {
				v, _ := strconv.ParseInt(f[1], 10, 64)
				switch f[0] {
				case "Rss:":
					rss += v
				case "Pss:":
					pss += v
				}
			}
		}
	}
	return
}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return v
	}
	return def
}

// TestKamailioStream is the stream rows against Kamailio by hand, opt-in
// (SIPEDGE_BENCH_STREAM=1; run it under nice): two SIPp Cores, Kamailio
// on udp/tcp/tls 27500-27502, then calls over TCP and TLS, new TLS
// handshakes, and idle TCP and TLS connections with Kamailio's memory
// measured. Rates: SIPEDGE_BENCH_STREAM_RATE (calls/s, 200),
// _HS (handshakes/s, 100), _IDLE (connections, 10000), _SECS (3),
// _PARALLEL (idle connects at once, 64), _TCP_CHILDREN (Kamailio's, 1),
// _ONLY (one step: calls-tcp, calls-tls, handshakes, idle-tcp, idle-tls).
func TestKamailioStream(t *testing.T) {
	if os.Getenv("SIPEDGE_BENCH_STREAM") != "1" {
		t.Skip("opt-in: SIPEDGE_BENCH_STREAM=1")
	}
	for _, bin := range []string{"kamailio", "sipp"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skip(bin + " not installed")
		}
	}
	if children.m == nil {
		children.m = map[*exec.Cmd]bool{}
	}
	rate, hs, idle := envInt("SIPEDGE_BENCH_STREAM_RATE", 200), envInt("SIPEDGE_BENCH_STREAM_HS", 100), envInt("SIPEDGE_BENCH_STREAM_IDLE", 10000)
	secs := time.Duration(envInt("SIPEDGE_BENCH_STREAM_SECS", 3)) * time.Second
	dir := t.TempDir()
	if d := os.Getenv("SIPEDGE_BENCH_STREAM_DIR"); d != "" {
		dir = d
		os.MkdirAll(dir, 0o755)
	}
	tcpChildren := envInt("SIPEDGE_BENCH_STREAM_TCP_CHILDREN", 1)
	only := os.Getenv("SIPEDGE_BENCH_STREAM_ONLY") // e.g. "idle-tls": one step
	step := func(name string) bool { return only == "" || only == name }
	var cores []*sippCore
	for _, p := range []int{27540, 27570} {
		cores = append(cores, startStreamCore(t, dir, p))
	}
	defer func() {
		for _, c := range cores {
			c.stop()
		}
	}()
	// A fresh Kamailio for the calls and handshakes, and one for each
	// idle row: freed connections leave their pages in its shared pool,
	// and a second row would reuse them and look cheaper.
	var k *target
	var tlsCfg *tls.Config
	startK := func(sub string) {
		if k != nil {
			k.stop()
		}
		d := filepath.Join(dir, sub)
		os.MkdirAll(d, 0o755)
		var pki streamload.PKI
		var err error
		if k, pki, err = startKamailioStream(d, 27500, 27501, 27502, tcpChildren, []int{27540, 27570}); err != nil {
			t.Fatal(err)
		}
		if tlsCfg, err = streamload.ClientTLS(pki.CAFile, pki.Name, false); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: kamailio pid %d, %d processes, tcp_children=%d, dir %s", sub, k.pid(), len(procTree(k.pid())), tcpChildren, d)
	}
	startK("kamailio-load")
	defer func() { k.stop() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	target := func(network string) streamload.Target {
		tg := streamload.Target{Network: network, Addr: "127.0.0.1:27501"}
		if network == "tls" {
			tg.Addr, tg.TLS = "127.0.0.1:27502", tlsCfg
		}
		return tg
	}
	crashed := func(step string) {
		if c := kamailioCrashed(k.log); c != "" {
			t.Errorf("after %s: Kamailio's log shows %q (kamailio#3791?)", step, c)
		}
	}
	var summary []string
	// Calls over long-lived connections.
	if _, err := streamload.RunCaller(ctx, streamload.CallerConfig{Target: target("tcp"), Conns: 4, Rate: 50, Duration: time.Second}); err != nil {
		t.Fatal(err) // warm-up
	}
	for _, network := range []string{"tcp", "tls"} {
		if !step("calls-" + network) {
			continue
		}
		cpu0 := cpuSeconds(k.pid())
		r, err := streamload.RunCaller(ctx, streamload.CallerConfig{Target: target(network), Conns: 10, Rate: float64(rate), Duration: secs})
		if err != nil {
			t.Fatal(err)
		}
		cpu := cpuSeconds(k.pid()) - cpu0
		t.Logf("calls: %v; reasons %v", r, r.Reasons)
		summary = append(summary, fmt.Sprintf("calls %s: %d/%d ok at %d CPS offered (%.1f CPS), setup p50 %.1f ms p99 %.1f ms, Kamailio %.3f CPU-s per 1,000 calls; %s",
			network, r.Succeeded, r.Attempted, rate, r.CPS, r.Setup.P50, r.Setup.P99, 1000*cpu/float64(max(r.Succeeded, 1)), r.Limit))
		crashed("calls over " + network)
		time.Sleep(time.Second)
	}
	// New TLS handshakes.
	if step("handshakes") {
		cpu0 := cpuSeconds(k.pid())
		r, err := streamload.RunHandshakes(ctx, streamload.HandshakeConfig{Target: target("tls"), Rate: float64(hs), Duration: secs})
		if err != nil {
			t.Fatal(err)
		}
		cpu := cpuSeconds(k.pid()) - cpu0
		t.Logf("handshakes: %v; statuses %v; reasons %v", r, r.Statuses, r.Reasons)
		summary = append(summary, fmt.Sprintf("handshakes: %d/%d ok at %d/s offered (%.1f/s), handshake p50 %.1f ms p99 %.1f ms, Kamailio %.3f CPU-s per 1,000; %s",
			r.Succeeded, r.Attempted, hs, r.PerSecond, r.Handshake.P50, r.Handshake.P99, 1000*cpu/float64(max(r.Succeeded, 1)), r.Limit))
		crashed("handshakes")
	}
	// Idle connections: Kamailio's memory before and with them open.
	for _, network := range []string{"tcp", "tls"} {
		if !step("idle-" + network) {
			continue
		}
		startK("kamailio-idle-" + network)
		tg := target(network)
		tg.Sources = streamload.Sources(netip.MustParseAddr("127.0.0.2"), 4)
		rss0, pss0 := memKiB(k.pid())
		var line string
		st, err := streamload.RunIdle(ctx, streamload.IdleConfig{Target: tg, Conns: idle, Parallel: envInt("SIPEDGE_BENCH_STREAM_PARALLEL", 64), Hold: 2 * time.Second, Timeout: 10 * time.Second,
			Ready: func(s streamload.IdleStatus) {
				time.Sleep(2 * time.Second)
				rss, pss := memKiB(k.pid())
				n := float64(max(s.Open, 1))
				line = fmt.Sprintf("idle %s: %d open, %d answered, opened in %.1f s; Kamailio (%d processes) Pss sum %.1f -> %.1f MiB = %.1f KiB per connection (Rss sum %.1f -> %.1f MiB = %.1f KiB)",
					network, s.Open, s.Answered, s.OpenTime.Seconds(), len(procTree(k.pid())), float64(pss0)/1024, float64(pss)/1024, float64(pss-pss0)/n,
					float64(rss0)/1024, float64(rss)/1024, float64(rss-rss0)/n)
			}})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("idle %s: %v", network, st)
		summary = append(summary, line)
		crashed("idle " + network)
	}
	crashed("the run")
	for _, s := range summary {
		t.Log("SUMMARY " + s)
	}
}
