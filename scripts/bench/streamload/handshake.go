package streamload

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// HandshakeConfig is a run of new connections, each a TLS handshake and
// one OPTIONS transaction, then closed.
type HandshakeConfig struct {
	Target
	// Rate is new connections per second; Duration how long they are
	// started; MaxCount caps their number (0: Rate x Duration).
	Rate     float64
	Duration time.Duration
	MaxCount int
	// Timeout bounds each attempt after the handshake: the OPTIONS to
	// its final response (default 5 s; the handshake has DialTimeout).
	Timeout time.Duration
	// RequestURI is the OPTIONS R-URI (default sip:ADDR;transport=...).
	RequestURI  string
	EverySecond func(Second)
}

// HandshakeResult is what a handshake run measured.
type HandshakeResult struct {
	Network   string         `json:"network"`
	Rate      float64        `json:"rate"`
	Attempted int            `json:"attempted"`
	Succeeded int            `json:"succeeded"`
	Failed    int            `json:"failed"`
	Reasons   map[string]int `json:"reasons,omitempty"`
	// Statuses counts the final responses to OPTIONS by code (any final
	// response is a success: the handshake and a transaction worked).
	Statuses map[int]int `json:"statuses"`
	Seconds  []Second    `json:"seconds"`
	// Handshake is connect-to-handshake-done minus the TCP connect;
	// Options is OPTIONS to its final response.
	Handshake Percentiles `json:"handshake"`
	Options   Percentiles `json:"options"`
	// PerSecond is the attempts that succeeded per second of the
	// offering window.
	PerSecond float64       `json:"per_second"`
	Elapsed   time.Duration `json:"elapsed_ns"`
	Limit     Limit         `json:"limit"`
}

func (r *HandshakeResult) String() string {
	return fmt.Sprintf("%s handshakes, %.0f/s offered: %d attempted, %d ok, %d failed; %.1f/s succeeded; handshake %v; OPTIONS %v; %v",
		r.Network, r.Rate, r.Attempted, r.Succeeded, r.Failed, r.PerSecond, r.Handshake, r.Options, r.Limit)
}

// RunHandshakes opens new connections at cfg.Rate; see HandshakeConfig.
// For Network "tcp" it measures plain connects the same way.
func RunHandshakes(ctx context.Context, cfg HandshakeConfig) (*HandshakeResult, error) {
	if err := cfg.Target.check(); err != nil {
		return nil, err
	}
	if cfg.Rate <= 0 || cfg.Duration <= 0 {
		return nil, errors.New("rate and duration must be positive")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	dialTimeout := cfg.DialTimeout
	if dialTimeout <= 0 {
		dialTimeout = 5 * time.Second
	}
	wanted := int(cfg.Rate * cfg.Duration.Seconds())
	if cfg.MaxCount > 0 && cfg.MaxCount < wanted {
		wanted = cfg.MaxCount
	}
	ruri := cfg.RequestURI
	if ruri == "" {
		ruri = "sip:" + cfg.Addr + ";transport=" + cfg.Network
	}
	transport := cfg.transport()
	idg := newIDs()
	start := time.Now()
	cnt := newCounters(start, cfg.Duration+dialTimeout+cfg.Timeout+2*time.Second)
	var hs, opt latencies
	var smu sync.Mutex
	statuses := map[int]int{}
	lim := newSelfLimit()

	attempt := func(i int) {
		cnt.attempt(time.Now())
		fail := func(why string) { cnt.fail(time.Now(), why) }
		nc, d, err := cfg.dial(ctx, i)
		if err != nil {
			fail(dialReason(err))
			return
		}
		defer nc.Close()
		if cfg.Network == "tls" {
			hs.add(d)
		}
		c := newConn(nc)
		id := idg.next()
		req := request{method: "OPTIONS", ruri: ruri, toURI: "sip:" + cfg.Addr, branch: "o" + id, fromTag: "t" + id, callID: id, cseq: 1}
		t0 := time.Now()
		nc.SetDeadline(t0.Add(cfg.Timeout))
		if err := c.write(c.build(transport, req), cfg.Timeout); err != nil {
			fail("write")
			return
		}
		r := bufio.NewReader(nc)
		for {
			raw, err := readMessage(r)
			if err != nil {
				if isTimeout(err) {
					fail("timeout OPTIONS")
				} else {
					fail("closed before a response")
				}
				return
			}
			res, err := parseResponse(raw)
			if err != nil || res.callID != id || res.status < 200 {
				continue
			}
			opt.add(time.Since(t0))
			smu.Lock()
			statuses[res.status]++
			smu.Unlock()
			cnt.ok(time.Now())
			return
		}
	}

	stopLive := cnt.live(cfg.EverySecond)
	var wg sync.WaitGroup
	offered := pace(ctx.Done(), cfg.Rate, start, start.Add(cfg.Duration), wanted, lim, func(i int) {
		wg.Add(1)
		go func() { defer wg.Done(); attempt(i) }()
	})
	offerEnd := time.Now()
	wg.Wait()
	stopLive()

	r := &HandshakeResult{Network: cfg.Network, Rate: cfg.Rate, Statuses: statuses, Elapsed: time.Since(start)}
	r.Seconds, r.Attempted, r.Succeeded, r.Failed, r.Reasons = cnt.totals()
	r.Handshake, r.Options = hs.percentiles(), opt.percentiles()
	r.PerSecond = float64(r.Succeeded) / max(offerEnd.Sub(start).Seconds(), cfg.Duration.Seconds())
	r.Limit = lim.limit(offered, wanted)
	return r, nil
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// dialReason is a short failure cause for counting.
func dialReason(err error) string {
	switch {
	case isTimeout(err):
		return "dial timeout"
	case errors.Is(err, context.Canceled):
		return "stopped"
	}
	s := err.Error()
	for _, k := range []string{"connection refused", "connection reset", "too many open files", "cannot assign requested address", "tls handshake"} {
		if strings.Contains(s, k) {
			return k
		}
	}
	if len(s) > 60 {
		s = s[:60]
	}
	return "dial: " + s
}
