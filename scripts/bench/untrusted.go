package main

import (
	"fmt"
	"strings"
)

// The sources runs: the sustained rate held twice, once by callers on
// the box itself (trusted, RFC 3261 loose routing) and once by callers
// outside security.trusted, whose every request sipedge checks against
// its routing policy (a new call toward the Core pool; ACK and BYE along
// a dialog known by Call-ID and both tags, to its recorded next hop).
// Kamailio has no such policy: its two runs differ only by the source.
const (
	trustedIP   = "127.0.0.1"
	untrustedIP = "127.0.0.2"
)

// sourceOrder is the order of the four half runs.
var sourceOrder = []string{trustedIP, untrustedIP, untrustedIP, trustedIP}

// sources holds the two runs, each the sum of its halves.
type sources struct {
	Trusted   *phase `json:"trusted"`
	Untrusted *phase `json:"untrusted"`
}

// add counts a half run into its source's run.
func (s *sources) add(ip string, p phase) {
	run := &s.Trusted
	if ip == untrustedIP {
		run = &s.Untrusted
	}
	if *run == nil {
		*run = &p
		return
	}
	m := *run
	m.Calls += p.Calls
	m.Success += p.Success
	m.Failed += p.Failed
	m.Refused503 += p.Refused503
	m.Retransmissions += p.Retransmissions
	m.P99ms = max(m.P99ms, p.P99ms)
	m.Duration += p.Duration
	m.CPUSeconds += p.CPUSeconds
	m.UDPDrops += p.UDPDrops
	m.CoresDown += p.CoresDown
	if !p.Clean {
		m.Clean = false
		m.Why = strings.TrimPrefix(m.Why+"; "+p.Why, "; ")
	}
}

// perCall is CPU-s per 1000 completed calls of a run.
func perCall(p *phase) float64 { return 1000 * p.CPUSeconds / float64(max(p.Success, 1)) }

// reportSources adds the sources runs to the summary: each balancer's
// two runs, and the untrusted/trusted CPU ratio (the policy's cost).
func reportSources(b *strings.Builder, rs []*result) {
	var lines []string
	for _, r := range rs {
		s := r.Sources
		if s == nil || s.Trusted == nil || s.Untrusted == nil {
			continue
		}
		lines = append(lines, fmt.Sprintf("  %s at %d CPS: trusted %s, untrusted %s; CPU per call untrusted/trusted %.2f",
			r.Target, s.Trusted.Rate, runLine(s.Trusted), runLine(s.Untrusted), perCall(s.Untrusted)/nonzero(perCall(s.Trusted))))
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(b, "\ncallers trusted (%s) and outside security.trusted (%s), same rate, same run, in halves (trusted, untrusted, untrusted, trusted):\n%s\n", trustedIP, untrustedIP, strings.Join(lines, "\n"))
}

func runLine(p *phase) string {
	state := "clean"
	if !p.Clean {
		state = "NOT clean: " + p.Why
	}
	return fmt.Sprintf("%d/%d failed, p99 < %d ms, %.3f CPU-s/1000 (%s)", p.Failed, p.Calls, p.P99ms, perCall(p), state)
}
