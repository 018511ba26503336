package streamload

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// IdleConfig is a run that holds many idle connections open.
type IdleConfig struct {
	Target
	// Conns is the number of connections to open (up to ~10,000 and
	// more: RLIMIT_NOFILE is raised as far as the hard limit allows).
	Conns int
	// Parallel bounds the connects (and handshakes) under way at once
	// (default 64).
	Parallel int
	// CRLF sends a CRLF keepalive (RFC 5626 double CRLF) instead of an
	// OPTIONS on each connection; no answer is awaited.
	CRLF bool
	// Timeout bounds each connection's OPTIONS transaction (default 5 s).
	Timeout time.Duration
	// Hold is how long the connections are held after they are all open.
	Hold time.Duration
	// Ready, when set, is called once all connections are open (and
	// their OPTIONS answered), before the hold; the hold starts when it
	// returns (so a measurement in it does not shorten the hold).
	Ready func(IdleStatus)
	// RequestURI of the OPTIONS (default sip:ADDR;transport=...).
	RequestURI string
}

// IdleStatus counts the connections.
type IdleStatus struct {
	Open     int `json:"open"`     // open now
	Opened   int `json:"opened"`   // connected (and TLS handshaken)
	Failed   int `json:"failed"`   // could not connect or handshake
	Answered int `json:"answered"` // OPTIONS with a final response
	// Closed counts connections the server closed (or that broke) after
	// they were open.
	Closed int `json:"closed_by_server"`
	// Reasons counts failures by cause.
	Reasons map[string]int `json:"reasons,omitempty"`
	// OpenTime is how long opening them all took.
	OpenTime time.Duration `json:"open_time_ns"`
}

func (s IdleStatus) String() string {
	return fmt.Sprintf("%d open (%d opened, %d failed, %d OPTIONS answered, %d closed by the server) in %.1f s; failures: %v",
		s.Open, s.Opened, s.Failed, s.Answered, s.Closed, s.OpenTime.Seconds(), sortedReasons(s.Reasons))
}

// RunIdle opens cfg.Conns connections, holds them for cfg.Hold after
// calling cfg.Ready, then closes them all. The status returned is the
// one at the end of the hold.
func RunIdle(ctx context.Context, cfg IdleConfig) (IdleStatus, error) {
	if err := cfg.Target.check(); err != nil {
		return IdleStatus{}, err
	}
	if cfg.Conns <= 0 {
		return IdleStatus{}, errors.New("conns must be positive")
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 64
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if _, err := RaiseNoFile(uint64(cfg.Conns) + 256); err != nil {
		return IdleStatus{}, err
	}
	ruri := cfg.RequestURI
	if ruri == "" {
		ruri = "sip:" + cfg.Addr + ";transport=" + cfg.Network
	}
	transport := cfg.transport()
	idg := newIDs()

	var (
		mu       sync.Mutex
		conns    []net.Conn
		reasons  = map[string]int{}
		failed   int
		answered atomic.Int64
		closed   atomic.Int64
		done     = make(chan struct{}) // we are closing: reads that end are ours
		readers  sync.WaitGroup
	)
	start := time.Now()
	sem := make(chan struct{}, cfg.Parallel)
	var wg sync.WaitGroup
	for i := 0; i < cfg.Conns && ctx.Err() == nil; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			nc, _, err := cfg.dial(ctx, i)
			if err != nil {
				mu.Lock()
				failed++
				reasons[dialReason(err)]++
				mu.Unlock()
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			c := newConn(nc)
			r := bufio.NewReaderSize(nc, 2048)
			if cfg.CRLF {
				c.write([]byte("\r\n\r\n"), cfg.Timeout)
			} else {
				id := idg.next()
				req := request{method: "OPTIONS", ruri: ruri, toURI: "sip:" + cfg.Addr, branch: "o" + id, fromTag: "t" + id, callID: id, cseq: 1}
				if err := c.write(c.build(transport, req), cfg.Timeout); err == nil {
					nc.SetReadDeadline(time.Now().Add(cfg.Timeout))
					for {
						raw, err := readMessage(r)
						if err != nil {
							mu.Lock()
							if isTimeout(err) {
								reasons["timeout OPTIONS"]++
							} else {
								reasons["closed before a response"]++
							}
							mu.Unlock()
							break
						}
						if res, err := parseResponse(raw); err == nil && res.callID == id && res.status >= 200 {
							answered.Add(1)
							break
						}
					}
					nc.SetReadDeadline(time.Time{})
				}
			}
			// Hold: read until the connection ends, to tell the ones the
			// server closes.
			readers.Add(1)
			go func() {
				defer readers.Done()
				for {
					if _, err := readMessage(r); err != nil {
						select {
						case <-done:
						default:
							closed.Add(1)
						}
						return
					}
				}
			}()
		}()
	}
	wg.Wait()
	status := func() IdleStatus {
		mu.Lock()
		defer mu.Unlock()
		rs := make(map[string]int, len(reasons))
		for k, v := range reasons {
			rs[k] = v
		}
		cl := int(closed.Load())
		return IdleStatus{Open: len(conns) - cl, Opened: len(conns), Failed: failed, Answered: int(answered.Load()), Closed: cl, Reasons: rs}
	}
	openTime := time.Since(start)
	st := status()
	st.OpenTime = openTime
	if cfg.Ready != nil {
		cfg.Ready(st)
	}
	select {
	case <-time.After(cfg.Hold):
	case <-ctx.Done():
	}
	st = status()
	st.OpenTime = openTime
	close(done)
	mu.Lock()
	for _, c := range conns {
		c.Close()
	}
	mu.Unlock()
	readers.Wait()
	return st, nil
}

// RaiseNoFile raises this process's RLIMIT_NOFILE soft limit to at least
// want when the hard limit allows (and the hard limit too when the
// process may), returning the soft limit in force.
func RaiseNoFile(want uint64) (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if rl.Cur >= want {
		return rl.Cur, nil
	}
	if rl.Max < want {
		n := syscall.Rlimit{Cur: want, Max: want}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &n) == nil {
			return want, nil
		}
	}
	rl.Cur = min(want, rl.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if rl.Cur < want {
		return rl.Cur, fmt.Errorf("RLIMIT_NOFILE: hard limit %d is below the %d wanted", rl.Max, want)
	}
	return rl.Cur, nil
}
