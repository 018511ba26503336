package main

import (
	"encoding/csv"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sippCore is one SIPp process playing a Core softswitch.
type sippCore struct {
	port int
	cmd  *exec.Cmd
	stat string
	done chan struct{}
}

func startCore(dir string, port int, scenario string) (*sippCore, error) {
	return startCorePorts(dir, port, port+1000, port+2000, scenario)
}

// startCorePorts is startCore with SIPp's control port cport and media
// port mport (the stream rows keep every port near the SIP one).
func startCorePorts(dir string, port, cport, mport int, scenario string) (*sippCore, error) {
	c := &sippCore{port: port, stat: filepath.Join(dir, fmt.Sprintf("core-%d.csv", port)), done: make(chan struct{})}
	c.cmd = exec.Command("sipp", "-sf", scenario, "-i", "127.0.0.1", "-p", strconv.Itoa(port),
		"-cp", strconv.Itoa(cport), "-mp", strconv.Itoa(mport),
		"-nostdin", "-timeout", "1800s", "-buff_size", "4194304", "-max_recv_loops", "5000",
		"-trace_stat", "-stf", c.stat, "-fd", "1", "-trace_counts")
	c.cmd.Dir = dir
	log, err := os.Create(filepath.Join(dir, fmt.Sprintf("core-%d.log", port)))
	if err != nil {
		return nil, err
	}
	c.cmd.Stdout, c.cmd.Stderr = log, log
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start sipp core: %w", err)
	}
	track(c.cmd)
	go func() { c.cmd.Wait(); untrack(c.cmd); log.Close(); close(c.done) }()
	return c, nil
}

// stop ends the core with SIGUSR1 (SIPp then writes its final statistics).
func (c *sippCore) stop() {
	c.cmd.Process.Signal(syscall.SIGUSR1)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
}

// stats is the last line of a SIPp -trace_stat file.
type stats map[string]string

func readStats(path string) (stats, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comma = ';'
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) < 2 {
		return nil, fmt.Errorf("sipp stats %s: %d rows: %v", path, len(rows), err)
	}
	h, l := rows[0], rows[len(rows)-1]
	s := stats{}
	for i, k := range h {
		if i < len(l) {
			s[k] = l[i]
		}
	}
	return s, nil
}

func (s stats) int(k string) int {
	v, _ := strconv.Atoi(strings.TrimSpace(s[k]))
	return v
}

// p99Bound is the smallest ResponseTimeRepartition bound (ms) under
// which at least 99 % of the calls' INVITE->200 times fall.
func (s stats) p99Bound() int {
	bounds := []int{10, 20, 50, 100, 200, 500, 1000}
	total := 0
	for _, b := range bounds {
		total += s.int(fmt.Sprintf("ResponseTimeRepartition1_<%d", b))
	}
	total += s.int("ResponseTimeRepartition1_>=1000")
	if total == 0 {
		return 0
	}
	acc := 0
	for _, b := range bounds {
		acc += s.int(fmt.Sprintf("ResponseTimeRepartition1_<%d", b))
		if float64(acc) >= 0.99*float64(total) {
			return b
		}
	}
	return 10000
}

// callerRun is one load step's result.
type callerRun struct {
	Phase           string        `json:"phase"`
	Rate            int           `json:"rate"`
	Calls           int           `json:"calls"`
	Success         int           `json:"success"`
	Failed          int           `json:"failed"`
	Refused503      int           `json:"refused_503"` // overload scenario only
	Retransmissions int           `json:"retransmissions"`
	P99ms           int           `json:"p99_ms"`
	Duration        time.Duration `json:"duration_ns"`
	CPUSeconds      float64       `json:"cpu_s"`
	RSSMiB          float64       `json:"rss_mib"`
	Goroutines      int           `json:"goroutines"`
	Start, End      float64       `json:"-"` // seconds since the bench started
}

// runCaller sends calls at rate to target for dur, splitting the rate over
// several SIPp processes (one saturates a core near 5,000 CPS). Bounded
// by count (rate*dur) and time (dur + call length + 15 s).
func runCaller(dir, scenario, ip, target string, basePort, rate int, dur time.Duration, callMS int) (callerRun, error) {
	procs := 1 + rate/3000
	res := callerRun{Rate: rate, Duration: dur}
	type proc struct {
		cmd  *exec.Cmd
		stat string
	}
	var ps []proc
	for i := 0; i < procs; i++ {
		r := rate / procs
		if i == 0 {
			r += rate % procs
		}
		n := int(float64(r) * dur.Seconds())
		port := basePort + i*10
		stat := filepath.Join(dir, fmt.Sprintf("caller-%d-%d-%d.csv", rate, i, time.Now().UnixNano()%1e6))
		limit := r*5 + 100
		if callMS > 1000 {
			limit = n + 100 // long calls: every call may be up at once
		}
		hard := int(dur.Seconds()) + callMS/1000 + 15
		cmd := exec.Command("sipp", "-sf", scenario, target, "-i", ip, "-p", strconv.Itoa(port),
			"-cp", strconv.Itoa(port+1), "-mp", strconv.Itoa(port+2),
			"-nostdin", "-r", strconv.Itoa(r), "-m", strconv.Itoa(n), "-l", strconv.Itoa(limit),
			"-d", strconv.Itoa(callMS), "-recv_timeout", "5000", "-timeout", fmt.Sprintf("%ds", hard),
			"-buff_size", "4194304", "-max_recv_loops", "5000", "-trace_stat", "-stf", stat, "-fd", "1", "-trace_counts",
			// What made a call fail (an unexpected message, and which), 1 MiB at most.
			"-trace_err", "-error_file", strings.TrimSuffix(stat, ".csv")+"-errors.log", "-max_log_size", "1048576")
		cmd.Dir = dir
		if err := cmd.Start(); err != nil {
			return res, fmt.Errorf("start sipp caller: %w", err)
		}
		track(cmd)
		ps = append(ps, proc{cmd, stat})
		res.Calls += n
	}
	for _, p := range ps {
		p.cmd.Wait()
		untrack(p.cmd)
		s, err := readStats(p.stat)
		if err != nil {
			return res, err
		}
		res.Success += s.int("SuccessfulCall(C)")
		res.Failed += s.int("FailedCall(C)")
		res.Retransmissions += s.int("Retransmissions(C)")
		if b := s.p99Bound(); b > res.P99ms {
			res.P99ms = b
		}
		files, _ := filepath.Glob(filepath.Join(dir, fmt.Sprintf("*_%d_counts.csv", p.cmd.Process.Pid)))
		for _, f := range files {
			res.Refused503 += countsSum(f, "_503_Recv")
		}
	}
	// A refused call ends "successfully" in the overload scenario: it is
	// not a completed call.
	res.Success -= res.Refused503
	// Calls neither successful nor failed by the hard stop are lost.
	if lost := res.Calls - res.Success - res.Refused503 - res.Failed; lost > 0 {
		res.Failed += lost
	}
	return res, nil
}

// countsSum adds the columns ending in suffix on the last line of a SIPp
// -trace_counts file.
func countsSum(path, suffix string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 {
		return 0
	}
	h := strings.Split(lines[0], ";")
	l := strings.Split(lines[len(lines)-1], ";")
	n := 0
	for i, k := range h {
		if i < len(l) && strings.HasSuffix(k, suffix) {
			v, _ := strconv.Atoi(strings.TrimSpace(l[i]))
			n += v
		}
	}
	return n
}

// coreSnap is what the Cores themselves counted so far.
type coreSnap struct {
	Invites, ACKs, BYEs, Unexpected, Failed int
}

func (a coreSnap) sub(b coreSnap) coreSnap {
	return coreSnap{a.Invites - b.Invites, a.ACKs - b.ACKs, a.BYEs - b.BYEs, a.Unexpected - b.Unexpected, a.Failed - b.Failed}
}

// snapCores reads every Core's -trace_counts and -trace_stat files (SIPp
// rewrites them every second: wait a little before a snapshot).
func snapCores(cores []*sippCore) coreSnap {
	var s coreSnap
	for _, c := range cores {
		files, _ := filepath.Glob(filepath.Join(filepath.Dir(c.stat), fmt.Sprintf("*_%d_counts.csv", c.cmd.Process.Pid)))
		for _, f := range files {
			s.Invites += countsSum(f, "_INVITE_Recv")
			s.ACKs += countsSum(f, "_ACK_Recv")
			s.BYEs += countsSum(f, "_BYE_Recv")
			s.Unexpected += countsSum(f, "_Unexp")
		}
		if st, err := readStats(c.stat); err == nil {
			s.Failed += st.int("FailedCall(C)")
		}
	}
	return s
}
