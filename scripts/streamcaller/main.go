// Command streamcaller is a SIP load generator over TCP and TLS (Debian's
// SIPp has no TLS), a thin front to scripts/bench/streamload:
//
//	streamcaller -mode call -net tls -addr 127.0.0.1:27011 -ca ca.pem -conns 10 -rate 200 -duration 5s
//	streamcaller -mode handshake -net tls -addr 127.0.0.1:27011 -ca ca.pem -rate 100 -duration 5s
//	streamcaller -mode idle -net tcp -addr 127.0.0.1:27010 -conns 10000 -keep 10s -pid $(pidof -s kamailio)
//
// call: long-lived connections carry calls (INVITE, 200, ACK, BYE, 200)
// at -rate for -duration; per-second and total counts, latency
// percentiles, and whether the generator itself was the limit.
// handshake: new connections at -rate, each a TLS handshake and one
// OPTIONS. idle: -conns connections, each sends an OPTIONS (or -crlf a
// keepalive), held for -keep; "READY ..." is printed (and -ready-file
// written) when all are open.
//
// With -pid, the process tree at that PID (a proxy that forks, as
// Kamailio does, counts whole) is measured: CPU seconds over a call or
// handshake run (per 1,000 calls or handshakes), and its memory (sum of
// Rss and of Pss, from smaps_rollup) before the idle connections, when
// all are open, and after they closed; per connection = the Pss
// difference / connections open (Pss counts a page shared by N processes
// 1/N in each, so forked workers' shared pool is not counted N times).
//
// Exit status: 0 when the run completed (failures are in the report), 1
// when it could not run, 2 on bad flags.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sipedge/sipedge/scripts/bench/streamload"
)

func main() {
	mode := flag.String("mode", "call", "call | handshake | idle")
	network := flag.String("net", "tcp", "tcp | tls")
	addr := flag.String("addr", "127.0.0.1:5060", "proxy IP:port")
	caFile := flag.String("ca", "", "PEM CA file to verify the server's certificate (default: system roots)")
	serverName := flag.String("servername", "", "name to verify in the server's certificate (default: the host of -addr)")
	insecure := flag.Bool("insecure", false, "do not verify the server's certificate")
	sources := flag.String("sources", "", "source addresses, e.g. 127.0.0.2+20 or 127.0.0.2-127.0.0.9 (default: the kernel's choice)")
	conns := flag.Int("conns", 0, "connections (call: default 10; idle: default 1000)")
	rate := flag.Float64("rate", 100, "calls or handshakes per second")
	dur := flag.Duration("duration", 5*time.Second, "how long calls or handshakes are started")
	maxN := flag.Int("max", 0, "at most this many calls or handshakes (0: rate x duration)")
	timeout := flag.Duration("timeout", 5*time.Second, "per transaction (INVITE, BYE, OPTIONS)")
	hold := flag.Duration("hold", 100*time.Millisecond, "call: time between ACK and BYE")
	keep := flag.Duration("keep", 10*time.Second, "idle: how long to hold the connections once all are open")
	crlf := flag.Bool("crlf", false, "idle: a CRLF keepalive instead of an OPTIONS on each connection")
	parallel := flag.Int("parallel", 64, "idle: connects under way at once")
	readyFile := flag.String("ready-file", "", "idle: write the status (JSON) here when all connections are open")
	pid := flag.Int("pid", 0, "measure this process tree's CPU (call, handshake) or memory (idle)")
	settle := flag.Duration("settle", time.Second, "idle: wait this long after all are open before measuring -pid")
	asJSON := flag.Bool("json", false, "print the result as JSON too")
	quiet := flag.Bool("quiet", false, "no per-second lines")
	flag.Parse()

	tgt := streamload.Target{Network: *network, Addr: *addr}
	if *network == "tls" {
		c, err := streamload.ClientTLS(*caFile, *serverName, *insecure)
		if err != nil {
			fail(1, "%v", err)
		}
		tgt.TLS = c
	}
	if *sources != "" {
		s, err := streamload.ParseSources(*sources)
		if err != nil {
			fail(2, "%v", err)
		}
		tgt.Sources = s
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	every := func(s streamload.Second) {
		if !*quiet {
			fmt.Printf("second %3d: %6d attempted %6d ok %6d failed\n", s.T, s.Attempted, s.Succeeded, s.Failed)
		}
	}
	cpu0 := 0.0
	if *pid > 0 {
		cpu0 = treeCPU(*pid)
	}
	perK := func(n int) string {
		if *pid <= 0 {
			return ""
		}
		cpu := treeCPU(*pid) - cpu0
		return fmt.Sprintf("process tree %d: %.2f CPU-s, %.3f CPU-s per 1,000", *pid, cpu, 1000*cpu/float64(max(n, 1)))
	}

	switch *mode {
	case "call":
		n := *conns
		if n == 0 {
			n = 10
		}
		r, err := streamload.RunCaller(ctx, streamload.CallerConfig{Target: tgt, Conns: n, Rate: *rate, Duration: *dur, MaxCalls: *maxN,
			CallTimeout: *timeout, Hold: *hold, EverySecond: every})
		if err != nil {
			fail(1, "%v", err)
		}
		fmt.Println("RESULT", r)
		if len(r.Reasons) > 0 {
			fmt.Println("FAILURES", r.Reasons)
		}
		if s := perK(r.Succeeded); s != "" {
			fmt.Println("CPU", s, "calls")
		}
		dump(*asJSON, r)
	case "handshake":
		r, err := streamload.RunHandshakes(ctx, streamload.HandshakeConfig{Target: tgt, Rate: *rate, Duration: *dur, MaxCount: *maxN,
			Timeout: *timeout, EverySecond: every})
		if err != nil {
			fail(1, "%v", err)
		}
		fmt.Println("RESULT", r)
		fmt.Println("STATUSES", r.Statuses)
		if len(r.Reasons) > 0 {
			fmt.Println("FAILURES", r.Reasons)
		}
		if s := perK(r.Succeeded); s != "" {
			fmt.Println("CPU", s, "handshakes")
		}
		dump(*asJSON, r)
	case "idle":
		n := *conns
		if n == 0 {
			n = 1000
		}
		var before, atReady mem
		if *pid > 0 {
			before = treeMem(*pid)
			fmt.Printf("MEM before: %v\n", before)
		}
		st, err := streamload.RunIdle(ctx, streamload.IdleConfig{Target: tgt, Conns: n, Parallel: *parallel, CRLF: *crlf, Timeout: *timeout, Hold: *keep,
			Ready: func(s streamload.IdleStatus) {
				if *pid > 0 {
					time.Sleep(*settle)
					atReady = treeMem(*pid)
				}
				fmt.Printf("READY %d open: %v\n", s.Open, s)
				if *pid > 0 {
					fmt.Printf("MEM with %d open: %v; per connection: Pss %.1f KiB, Rss %.1f KiB\n", s.Open, atReady,
						float64(atReady.pss-before.pss)/float64(max(s.Open, 1)), float64(atReady.rss-before.rss)/float64(max(s.Open, 1)))
				}
				if *readyFile != "" {
					b, _ := json.Marshal(s)
					if err := os.WriteFile(*readyFile, b, 0o644); err != nil {
						fmt.Fprintln(os.Stderr, "streamcaller:", err)
					}
				}
			}})
		if err != nil {
			fail(1, "%v", err)
		}
		fmt.Println("RESULT", st)
		if *pid > 0 {
			time.Sleep(*settle)
			fmt.Printf("MEM after close: %v\n", treeMem(*pid))
		}
		dump(*asJSON, st)
	default:
		fail(2, "unknown -mode %q", *mode)
	}
}

func dump(on bool, v any) {
	if on {
		b, _ := json.Marshal(v)
		fmt.Println("JSON", string(b))
	}
}

func fail(code int, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "streamcaller: "+format+"\n", args...)
	os.Exit(code)
}

// tree lists pid and its descendants.
func tree(root int) []int {
	kids := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i > 0 {
			if f := strings.Fields(s[i+1:]); len(f) > 1 {
				pp, _ := strconv.Atoi(f[1])
				kids[pp] = append(kids[pp], p)
			}
		}
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, kids[out[i]]...)
	}
	return out
}

// treeCPU is the user+system CPU seconds of the tree.
func treeCPU(root int) float64 {
	var ticks int64
	for _, p := range tree(root) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i > 0 {
			if f := strings.Fields(s[i+1:]); len(f) > 12 {
				u, _ := strconv.ParseInt(f[11], 10, 64)
				st, _ := strconv.ParseInt(f[12], 10, 64)
				ticks += u + st
			}
		}
	}
	return float64(ticks) / 100
}

// mem is a process tree's memory in KiB.
type mem struct{ procs, rss, pss int64 }

func (m mem) String() string {
	return fmt.Sprintf("%d processes, Rss sum %.1f MiB, Pss sum %.1f MiB", m.procs, float64(m.rss)/1024, float64(m.pss)/1024)
}

func treeMem(root int) mem {
	var m mem
	for _, p := range tree(root) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", p))
		if err != nil {
			continue
		}
		m.procs++
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			v, _ := strconv.ParseInt(f[1], 10, 64)
			switch f[0] {
			case "Rss:":
				m.rss += v
			case "Pss:":
				m.pss += v
			}
		}
	}
	return m
}
