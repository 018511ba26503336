package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// children are the peer processes the bench started, so that an
// interrupted bench stops them (by PID) instead of leaving them running.
var children struct {
	mu sync.Mutex
	m  map[*exec.Cmd]bool
}

func track(c *exec.Cmd)   { children.mu.Lock(); children.m[c] = true; children.mu.Unlock() }
func untrack(c *exec.Cmd) { children.mu.Lock(); delete(children.m, c); children.mu.Unlock() }

// stopChildrenOnSignal kills the tracked children on SIGINT or SIGTERM
// and exits.
func stopChildrenOnSignal() {
	children.m = map[*exec.Cmd]bool{}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-ch
		children.mu.Lock()
		for c := range children.m {
			if c.Process != nil {
				c.Process.Kill()
			}
		}
		children.mu.Unlock()
		fatal("stopped by %v", sig)
	}()
}

// procTree lists pid and every descendant (Kamailio forks its workers).
func procTree(root int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		f := statFields(string(b))
		if len(f) > 1 {
			pp, _ := strconv.Atoi(f[1])
			children[pp] = append(children[pp], pid)
		}
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// statFields returns /proc/PID/stat fields after the command name
// (field 3, the state, is index 0).
func statFields(s string) []string {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

// cpuSeconds is user+system CPU of the process tree at root.
func cpuSeconds(root int) float64 {
	var ticks int64
	for _, pid := range procTree(root) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		f := statFields(string(b))
		if len(f) > 12 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			s, _ := strconv.ParseInt(f[12], 10, 64)
			ticks += u + s
		}
	}
	return float64(ticks) / 100 // USER_HZ
}

// rssMiB is the resident memory of the process tree at root. Kamailio's
// workers share one large memory pool: counted once via Pss.
func rssMiB(root int) float64 {
	var kb int64
	for _, pid := range procTree(root) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "Pss:") {
				f := strings.Fields(line)
				v, _ := strconv.ParseInt(f[1], 10, 64)
				kb += v
			}
		}
	}
	return float64(kb) / 1024
}

// udpDrops sums the kernel's receive-buffer drops of UDP sockets bound
// to the given local ports.
func udpDrops(ports ...int) int64 {
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return 0
	}
	want := map[string]bool{}
	for _, p := range ports {
		want[fmt.Sprintf("%04X", p)] = true
	}
	var drops int64
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 13 {
			continue
		}
		if _, port, ok := strings.Cut(f[1], ":"); ok && want[port] {
			d, _ := strconv.ParseInt(f[12], 10, 64)
			drops += d
		}
	}
	return drops
}
