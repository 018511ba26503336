// Command bench-balancer steps SIPp call load through sipedge's balancer
// and through Kamailio's dispatcher (tm + rr + dispatcher round robin,
// record-routing, -x tlsf -m 1024 -M 16, 2 UDP workers) to two SIPp
// Cores, in the same run and the same way, and prints for each the
// highest clean call rate (no failed call, every INVITE answered within
// 200 ms), CPU seconds per 1000 calls at that rate, memory, goroutines
// (sipedge) and the ratios.
//
// Loopback only; every step is bounded in calls and time; every process
// it starts is stopped by its PID and waited on.
//
//	go run ./scripts/bench-balancer -steps 1000,2000,3000,4000 -step 20s -out bench-results
package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var (
	stepsFlag = flag.String("steps", "1000,2000,3000,4000,5000,6000", "call rates (CPS) to step through")
	stepDur   = flag.Duration("step", 20*time.Second, "duration of each step")
	holdMS    = flag.Int("hold", 100, "call duration (ms)")
	outDir    = flag.String("out", "bench-results", "results folder")
	skipKam   = flag.Bool("no-kamailio", false, "skip the Kamailio baseline")
	basePort  = flag.Int("port", 35060, "first port of the block used (about 40 ports)")
	strict    = flag.Bool("strict-order", false, "fail calls whose 180 arrives after the 200 (default: absorb it, as Kamailio's workers reorder)")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		log.Fatal(err)
	}
	root, err := moduleRoot()
	if err != nil {
		log.Fatal(err)
	}
	var steps []int
	for _, s := range strings.Split(*stepsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			log.Fatalf("bad -steps %q", *stepsFlag)
		}
		steps = append(steps, n)
	}
	bin := filepath.Join(*outDir, "bin", "sipedge")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./daemon")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		log.Fatalf("build sipedge: %v\n%s", err, out)
	}
	abs, _ := filepath.Abs(bin)
	scen := filepath.Join(root, "daemon/balancer/testdata")

	results := []result{runTarget("sipedge", abs, scen, steps)}
	if !*skipKam {
		if _, err := exec.LookPath("kamailio"); err != nil {
			log.Printf("kamailio not found: baseline skipped")
		} else {
			results = append(results, runTarget("kamailio", "", scen, steps))
		}
	}
	report(results)
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

type stepResult struct {
	CPS         int     `json:"cps"`
	Calls       int     `json:"calls"`
	OK          int     `json:"ok"`
	Failed      int     `json:"failed"`
	Over200ms   int     `json:"over_200ms"`
	CPUSeconds  float64 `json:"cpu_seconds"`
	CPUPer1000  float64 `json:"cpu_s_per_1000_calls"`
	MemoryMB    float64 `json:"memory_mb"`
	Goroutines  int     `json:"goroutines,omitempty"`
	CoreInvites [2]int  `json:"core_invites"`
	CoreByes    [2]int  `json:"core_byes"`
	Clean       bool    `json:"clean"`
}

type result struct {
	Name  string       `json:"name"`
	Steps []stepResult `json:"steps"`
	Best  *stepResult  `json:"best"`
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func start(dir, name string, args ...string) *proc {
	f, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		log.Fatal(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, f, f
	if err := cmd.Start(); err != nil {
		log.Fatalf("start %s: %v", name, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); f.Close(); close(p.done) }()
	return p
}

func (p *proc) stop(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func runTarget(name, bin, scen string, steps []int) result {
	dir, _ := filepath.Abs(filepath.Join(*outDir, name))
	os.RemoveAll(dir)
	os.MkdirAll(dir, 0o755)
	port := *basePort
	if name == "kamailio" {
		port += 20
	}
	balPort, core1, core2 := port, port+1, port+2
	res := result{Name: name}
	for _, cps := range steps {
		sd := filepath.Join(dir, strconv.Itoa(cps))
		os.MkdirAll(sd, 0o755)
		cores := []*proc{}
		for i, cp := range []int{core1, core2} {
			cores = append(cores, start(sd, fmt.Sprintf("core%d", i+1), "sipp", "-sf", filepath.Join(scen, "core_uas.xml"),
				"-i", "127.0.0.1", "-p", strconv.Itoa(cp), "-cp", strconv.Itoa(port+10+i), "-mp", strconv.Itoa(40000+2000*i+port%1000),
				"-nostdin", "-timeout", fmt.Sprintf("%ds", int(stepDur.Seconds())+60), "-buff_size", "8388608",
				"-trace_counts", "-trace_stat", "-stf", fmt.Sprintf("core%d.csv", i+1), "-fd", "1"))
		}
		var bal *proc
		var stopSig syscall.Signal = syscall.SIGTERM
		if name == "sipedge" {
			cfg := fmt.Sprintf(`node: {name: bench, profile: single, data_dir: %q}
log: {level: warn, format: text}
web: {listen: ""}
sip:
  listen: ["udp:127.0.0.1:%d"]
  algorithm: round-robin
  probe: {interval: 1s, timeout: 500ms}
  cores:
    - {name: core1, address: "127.0.0.1:%d"}
    - {name: core2, address: "127.0.0.1:%d"}
`, filepath.Join(sd, "data"), balPort, core1, core2)
			os.WriteFile(filepath.Join(sd, "sipedge.yaml"), []byte(cfg), 0o644)
			bal = start(sd, "sipedge", bin, "run", "-config", filepath.Join(sd, "sipedge.yaml"))
		} else {
			writeKamailio(sd, balPort, core1, core2)
			bal = start(sd, "kamailio", "kamailio", "-DD", "-E", "-x", "tlsf", "-m", "1024", "-M", "16", "-f", filepath.Join(sd, "kamailio.cfg"))
		}
		time.Sleep(3 * time.Second)
		cpu0 := treeCPU(bal.cmd.Process.Pid)
		calls := cps * int(stepDur.Seconds())
		uac := start(sd, "uac", "sipp", fmt.Sprintf("127.0.0.1:%d", balPort), "-sf", filepath.Join(scen, callerScenario()),
			"-i", "127.0.0.1", "-p", strconv.Itoa(port+5), "-cp", strconv.Itoa(port+12), "-mp", strconv.Itoa(46000+port%1000),
			"-nostdin", "-timeout", fmt.Sprintf("%ds", int(stepDur.Seconds())+30), "-buff_size", "8388608",
			"-m", strconv.Itoa(calls), "-r", strconv.Itoa(cps), "-d", strconv.Itoa(*holdMS), "-l", strconv.Itoa(cps*5),
			"-recv_timeout", "5000", "-s", "1000", "-trace_stat", "-stf", "uac.csv", "-fd", "1")
		select {
		case <-uac.done:
		case <-time.After(*stepDur + 40*time.Second):
			uac.stop(syscall.SIGUSR1)
		}
		time.Sleep(500 * time.Millisecond)
		st := stepResult{CPS: cps, Calls: calls}
		st.CPUSeconds = treeCPU(bal.cmd.Process.Pid) - cpu0
		st.MemoryMB = treeMemMB(bal.cmd.Process.Pid)
		if name == "sipedge" {
			st.Goroutines = sipedgeGoroutines(bin, filepath.Join(sd, "sipedge.yaml"))
		}
		u := lastRow(filepath.Join(sd, "uac.csv"))
		st.OK, st.Failed = atoi(u["SuccessfulCall(C)"]), atoi(u["FailedCall(C)"])
		for _, k := range []string{"ResponseTimeRepartition1_<500", "ResponseTimeRepartition1_<1000", "ResponseTimeRepartition1_<2000", "ResponseTimeRepartition1_>=2000"} {
			st.Over200ms += atoi(u[k])
		}
		bal.stop(stopSig)
		for i, c := range cores {
			c.stop(syscall.SIGUSR1)
			cnt := counts(filepath.Join(sd, fmt.Sprintf("core_uas_%d_counts.csv", c.cmd.Process.Pid)))
			st.CoreInvites[i], st.CoreByes[i] = cnt["INVITE_Recv"], cnt["BYE_Recv"]
		}
		if st.OK > 0 {
			st.CPUPer1000 = st.CPUSeconds / float64(st.OK) * 1000
		}
		st.Clean = st.OK == calls && st.Failed == 0 && st.Over200ms == 0 &&
			st.CoreByes[0]+st.CoreByes[1] == calls
		log.Printf("%-8s %5d CPS: %d/%d ok, %d failed, %d over 200ms, %.2f CPU-s/1000 calls, %.0f MB, goroutines %d, cores INVITE %v BYE %v clean=%v",
			name, cps, st.OK, calls, st.Failed, st.Over200ms, st.CPUPer1000, st.MemoryMB, st.Goroutines, st.CoreInvites, st.CoreByes, st.Clean)
		res.Steps = append(res.Steps, st)
		if st.Clean {
			s := st
			res.Best = &s
		} else {
			break
		}
	}
	data, _ := json.MarshalIndent(res, "", "  ")
	os.WriteFile(filepath.Join(dir, "result.json"), data, 0o644)
	return res
}

func writeKamailio(dir string, port, c1, c2 int) {
	list := fmt.Sprintf("1 sip:127.0.0.1:%d\n1 sip:127.0.0.1:%d\n", c1, c2)
	os.WriteFile(filepath.Join(dir, "dispatcher.list"), []byte(list), 0o644)
	cfg := fmt.Sprintf(`#!KAMAILIO
debug=1
log_stderror=yes
children=2
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
modparam("tm", "fr_timer", 2000)
request_route {
	if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
	if (has_totag()) {
		if (loose_route()) { t_relay(); exit; }
		if (is_method("ACK")) { if (t_check_trans()) { t_relay(); } exit; }
		sl_send_reply("404", "Not here"); exit;
	}
	if (is_method("CANCEL")) { if (t_check_trans()) { t_relay(); } exit; }
	t_check_trans();
	record_route();
	if (!ds_select_dst("1", "4")) { sl_send_reply("503", "Service Unavailable"); exit; }
	t_relay();
}
`, port, filepath.Join(dir, "dispatcher.list"))
	os.WriteFile(filepath.Join(dir, "kamailio.cfg"), []byte(cfg), 0o644)
}

// treeCPU sums utime+stime (seconds) of pid and its children.
func treeCPU(pid int) float64 {
	var total float64
	for _, p := range tree(pid) {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		s := string(data)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) > 12 {
			total += float64(atoi(f[11])+atoi(f[12])) / 100
		}
	}
	return total
}

// treeMemMB sums the proportional set size of pid and its children
// (shared memory counted once).
func treeMemMB(pid int) float64 {
	var kb int
	for _, p := range tree(pid) {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", p))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "Pss:") {
				kb += atoi(strings.Fields(line)[1])
			}
		}
	}
	return float64(kb) / 1024
}

func tree(pid int) []int {
	out := []int{pid}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p := atoi(e.Name())
		if p == 0 {
			continue
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		s := string(data)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) > 1 && atoi(f[1]) == pid {
			out = append(out, p)
		}
	}
	return out
}

func sipedgeGoroutines(bin, cfg string) int {
	out, err := exec.Command(bin, "ctl", "-config", cfg, "-json", "cores").Output()
	if err != nil {
		return 0
	}
	var st struct {
		Stats map[string]int `json:"stats"`
	}
	json.Unmarshal(out, &st)
	return st.Stats["goroutines"]
}

func lastRow(path string) map[string]string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.Comma, r.FieldsPerRecord, r.LazyQuotes = ';', -1, true
	rows, _ := r.ReadAll()
	m := map[string]string{}
	if len(rows) < 2 {
		return m
	}
	for i, h := range rows[0] {
		if i < len(rows[len(rows)-1]) {
			m[h] = rows[len(rows)-1][i]
		}
	}
	return m
}

// counts reads a SIPp -trace_counts file: messages per scenario line,
// keyed "INVITE_Recv" etc. (first occurrence of a name wins).
func counts(path string) map[string]int {
	m := map[string]int{}
	data, err := os.ReadFile(path)
	if err != nil {
		return m
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) < 2 {
		return m
	}
	h, v := strings.Split(lines[0], ";"), strings.Split(lines[len(lines)-1], ";")
	for i := range h {
		key := h[i]
		if j := strings.IndexByte(key, '_'); j > 0 {
			if _, err := strconv.Atoi(key[:j]); err == nil {
				key = key[j+1:]
			}
		}
		if _, seen := m[key]; !seen && i < len(v) {
			m[key] = atoi(v[i])
		}
	}
	return m
}

func atoi(s string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(s))
	return n
}

func report(rs []result) {
	fmt.Println()
	fmt.Printf("%-9s %10s %14s %10s %11s\n", "balancer", "clean CPS", "CPU-s/1000", "memory MB", "goroutines")
	for _, r := range rs {
		if r.Best == nil {
			fmt.Printf("%-9s %10s\n", r.Name, "none clean")
			continue
		}
		fmt.Printf("%-9s %10d %14.3f %10.0f %11d\n", r.Name, r.Best.CPS, r.Best.CPUPer1000, r.Best.MemoryMB, r.Best.Goroutines)
	}
	if len(rs) == 2 && rs[0].Best != nil && rs[1].Best != nil {
		a, k := rs[0].Best, rs[1].Best
		fmt.Printf("ratio sipedge/kamailio: CPS %.2f, CPU per call %.2f, memory %.2f\n",
			float64(a.CPS)/float64(k.CPS), a.CPUPer1000/k.CPUPer1000, a.MemoryMB/k.MemoryMB)
	}
	data, _ := json.MarshalIndent(rs, "", "  ")
	if err := os.WriteFile(filepath.Join(*outDir, "results.json"), data, 0o644); err != nil {
		log.Print(errors.Join(err))
	}
	fmt.Printf("results in %s\n", *outDir)
}

func callerScenario() string {
	if *strict {
		return "caller_uac.xml"
	}
	return "caller_uac_lenient.xml"
}
