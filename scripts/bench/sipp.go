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
	c := &sippCore{port: port, stat: filepath.Join(dir, fmt.Sprintf("core-%d.csv", port)), done: make(chan struct{})}
	c.cmd = exec.Command("sipp", "-sf", scenario, "-i", "127.0.0.1", "-p", strconv.Itoa(port),
		"-cp", strconv.Itoa(port+1000), "-mp", strconv.Itoa(port+2000),
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
	go func() { c.cmd.Wait(); log.Close(); close(c.done) }()
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
	Rate, Calls       int
	Success, Failed   int
	Retransmissions   int
	P99ms             int
	Duration          time.Duration
	CPUSeconds        float64
	RSSMiB            float64
	Goroutines        int
}

// runCaller sends calls at rate to target for dur, splitting the rate over
// several SIPp processes (one saturates a core near 5,000 CPS). Bounded
// by count (rate*dur) and time (dur + 15 s).
func runCaller(dir, scenario, target string, basePort, rate int, dur time.Duration, callMS int) (callerRun, error) {
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
		stat := filepath.Join(dir, fmt.Sprintf("caller-%d-%d.csv", rate, i))
		cmd := exec.Command("sipp", "-sf", scenario, target, "-i", "127.0.0.1", "-p", strconv.Itoa(port),
			"-cp", strconv.Itoa(port+1), "-mp", strconv.Itoa(port+2),
			"-nostdin", "-r", strconv.Itoa(r), "-m", strconv.Itoa(n), "-l", strconv.Itoa(r*5+100),
			"-d", strconv.Itoa(callMS), "-recv_timeout", "5000", "-timeout", fmt.Sprintf("%ds", int(dur.Seconds())+15),
			"-buff_size", "4194304", "-max_recv_loops", "5000", "-trace_stat", "-stf", stat, "-fd", "1")
		cmd.Dir = dir
		if err := cmd.Start(); err != nil {
			return res, fmt.Errorf("start sipp caller: %w", err)
		}
		ps = append(ps, proc{cmd, stat})
		res.Calls += n
	}
	for _, p := range ps {
		p.cmd.Wait()
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
	}
	// Calls neither successful nor failed by the hard stop are lost.
	if lost := res.Calls - res.Success - res.Failed; lost > 0 {
		res.Failed += lost
	}
	return res, nil
}
