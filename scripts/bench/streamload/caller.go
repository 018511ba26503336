package streamload

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// CallerConfig is a caller run.
type CallerConfig struct {
	Target
	// Conns is the number of long-lived connections; calls are spread
	// over them in turn (default 10).
	Conns int
	// Rate is the total call rate (calls per second) to offer.
	Rate float64
	// Duration is how long calls are started; MaxCalls caps their count
	// (0: Rate x Duration).
	Duration time.Duration
	MaxCalls int
	// CallTimeout bounds each transaction of a call (INVITE to its
	// final response, BYE to its final response; default 5 s).
	CallTimeout time.Duration
	// Hold is the time between the ACK and the BYE (default 100 ms).
	Hold time.Duration
	// RequestURI is the INVITE's R-URI (default
	// sip:service@ADDR;transport=tcp|tls).
	RequestURI string
	// EverySecond, when set, gets each completed second as it passes.
	EverySecond func(Second)
}

// CallerResult is what a caller run measured.
type CallerResult struct {
	Network   string  `json:"network"`
	Conns     int     `json:"conns"`
	Rate      float64 `json:"rate"`
	Attempted int     `json:"attempted"`
	Succeeded int     `json:"succeeded"`
	Failed    int     `json:"failed"`
	// Reasons counts failures by cause ("INVITE 503", "timeout INVITE",
	// "connection closed", ...).
	Reasons map[string]int `json:"reasons,omitempty"`
	Seconds []Second       `json:"seconds"`
	// Setup is INVITE to 200, Bye is BYE to its 200.
	Setup Percentiles `json:"setup"`
	Bye   Percentiles `json:"bye"`
	// CPS is the calls that succeeded per second of the offering window.
	CPS float64 `json:"cps"`
	// Elapsed is from the first attempt to the last call's end.
	Elapsed time.Duration `json:"elapsed_ns"`
	// ConnsLost counts connections that closed during the run.
	ConnsLost int `json:"conns_lost"`
	// Stray counts messages that matched no call or did not parse.
	Stray int   `json:"stray"`
	Limit Limit `json:"limit"`
}

func (r *CallerResult) String() string {
	return fmt.Sprintf("%s %d conns, %.0f CPS offered: %d attempted, %d ok, %d failed; %.1f CPS succeeded; setup %v; BYE %v; %d conns lost, %d stray; %v",
		r.Network, r.Conns, r.Rate, r.Attempted, r.Succeeded, r.Failed, r.CPS, r.Setup, r.Bye, r.ConnsLost, r.Stray, r.Limit)
}

// callConn is a caller connection: the calls waiting on it by Call-ID.
type callConn struct {
	*conn
	mu    sync.Mutex
	calls map[string]chan *response
	dead  chan struct{}
	lost  atomic.Bool // closed by the server (or an error), not by us
	stray *atomic.Int64
}

func (c *callConn) register(id string) chan *response {
	ch := make(chan *response, 8)
	c.mu.Lock()
	c.calls[id] = ch
	c.mu.Unlock()
	return ch
}

func (c *callConn) unregister(id string) {
	c.mu.Lock()
	delete(c.calls, id)
	c.mu.Unlock()
}

func (c *callConn) readLoop() {
	defer func() {
		if !c.closed.Load() {
			c.lost.Store(true)
		}
		close(c.dead)
	}()
	r := bufio.NewReaderSize(c.c, 16384)
	for {
		raw, err := readMessage(r)
		if err != nil {
			return
		}
		res, err := parseResponse(raw)
		if err != nil {
			c.stray.Add(1)
			continue
		}
		c.mu.Lock()
		ch := c.calls[res.callID]
		c.mu.Unlock()
		if ch == nil {
			c.stray.Add(1)
			continue
		}
		select {
		case ch <- res:
		default:
			c.stray.Add(1)
		}
	}
}

// RunCaller runs calls over long-lived connections; see CallerConfig.
// It returns an error only when it could not start (bad config, no
// connection opened); failed calls are in the result.
func RunCaller(ctx context.Context, cfg CallerConfig) (*CallerResult, error) {
	if err := cfg.Target.check(); err != nil {
		return nil, err
	}
	if cfg.Rate <= 0 || cfg.Duration <= 0 {
		return nil, errors.New("rate and duration must be positive")
	}
	if cfg.Conns <= 0 {
		cfg.Conns = 10
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 5 * time.Second
	}
	if cfg.Hold < 0 {
		cfg.Hold = 0
	} else if cfg.Hold == 0 {
		cfg.Hold = 100 * time.Millisecond
	}
	wanted := int(cfg.Rate * cfg.Duration.Seconds())
	if cfg.MaxCalls > 0 && cfg.MaxCalls < wanted {
		wanted = cfg.MaxCalls
	}
	transport := cfg.transport()
	ruri := cfg.RequestURI
	if ruri == "" {
		ruri = "sip:service@" + cfg.Addr + ";transport=" + cfg.Network
	}
	toURI := "sip:service@" + cfg.Addr

	var stray atomic.Int64
	conns := make([]*callConn, cfg.Conns)
	{
		var wg sync.WaitGroup
		errs := make([]error, cfg.Conns)
		sem := make(chan struct{}, 32)
		for i := range conns {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				c, _, err := cfg.dial(ctx, i)
				if err != nil {
					errs[i] = err
					return
				}
				conns[i] = &callConn{conn: newConn(c), calls: map[string]chan *response{}, dead: make(chan struct{}), stray: &stray}
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				for _, c := range conns {
					if c != nil {
						c.close()
					}
				}
				return nil, fmt.Errorf("connection %d: %w", i, err)
			}
		}
	}
	for _, c := range conns {
		go c.readLoop()
	}
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()

	idg := newIDs()
	start := time.Now()
	span := cfg.Duration + cfg.Hold + 2*cfg.CallTimeout + 2*time.Second
	cnt := newCounters(start, span)
	var setup, bye latencies
	lim := newSelfLimit()
	writeTimeout := cfg.CallTimeout

	call := func(i int) {
		c := conns[i%len(conns)]
		t0 := time.Now()
		cnt.attempt(t0)
		fail := func(why string) { cnt.fail(time.Now(), why) }
		select {
		case <-c.dead:
			fail("connection closed")
			return
		default:
		}
		id := idg.next()
		callID, fromTag := id, "t"+id
		ch := c.register(callID)
		defer c.unregister(callID)
		inv := request{method: "INVITE", ruri: ruri, toURI: toURI, branch: "i" + id, fromTag: fromTag, callID: callID, cseq: 1}
		if err := c.write(c.build(transport, inv), writeTimeout); err != nil {
			fail("write: connection")
			return
		}
		// wait returns the final response to method, or "" and a reason.
		wait := func(method string, seq uint32) (*response, string) {
			tm := time.NewTimer(cfg.CallTimeout)
			defer tm.Stop()
			for {
				select {
				case res := <-ch:
					if res.method != method || res.cseq != seq || res.status < 200 {
						continue // provisional, or late for another transaction
					}
					return res, ""
				case <-tm.C:
					return nil, "timeout " + method
				case <-c.dead:
					return nil, "connection closed"
				case <-ctx.Done():
					return nil, "stopped"
				}
			}
		}
		res, why := wait("INVITE", 1)
		if res == nil {
			fail(why)
			return
		}
		if res.status >= 300 {
			// ACK the failure hop by hop (same branch), as RFC 3261 17.1.1.3.
			ack := inv
			ack.method, ack.tag = "ACK", res.toTag
			c.write(c.build(transport, ack), writeTimeout)
			fail("INVITE " + strconv.Itoa(res.status))
			return
		}
		setup.add(time.Since(t0))
		target := res.contact
		if target == "" {
			target = ruri
		}
		ack := request{method: "ACK", ruri: target, toURI: toURI, branch: "a" + id, fromTag: fromTag, tag: res.toTag, callID: callID, cseq: 1, routes: res.routes}
		if err := c.write(c.build(transport, ack), writeTimeout); err != nil {
			fail("write: connection")
			return
		}
		select {
		case <-time.After(cfg.Hold):
		case <-ctx.Done():
			fail("stopped")
			return
		}
		b := ack
		b.method, b.branch, b.cseq = "BYE", "b"+id, 2
		t1 := time.Now()
		if err := c.write(c.build(transport, b), writeTimeout); err != nil {
			fail("write: connection")
			return
		}
		res, why = wait("BYE", 2)
		if res == nil {
			fail(why)
			return
		}
		if res.status >= 300 {
			fail("BYE " + strconv.Itoa(res.status))
			return
		}
		bye.add(time.Since(t1))
		cnt.ok(time.Now())
	}

	stopLive := cnt.live(cfg.EverySecond)
	var wg sync.WaitGroup
	offered := pace(ctx.Done(), cfg.Rate, start, start.Add(cfg.Duration), wanted, lim, func(i int) {
		wg.Add(1)
		go func() { defer wg.Done(); call(i) }()
	})
	offerEnd := time.Now()
	wg.Wait()
	stopLive()

	r := &CallerResult{Network: cfg.Network, Conns: cfg.Conns, Rate: cfg.Rate, Elapsed: time.Since(start), Stray: int(stray.Load())}
	r.Seconds, r.Attempted, r.Succeeded, r.Failed, r.Reasons = cnt.totals()
	r.Setup, r.Bye = setup.percentiles(), bye.percentiles()
	r.CPS = float64(r.Succeeded) / max(offerEnd.Sub(start).Seconds(), cfg.Duration.Seconds())
	for _, c := range conns {
		if c.lost.Load() {
			r.ConnsLost++
		}
	}
	r.Limit = lim.limit(offered, wanted)
	return r, nil
}
