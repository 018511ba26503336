package console

import (
	"errors"
	"io"
	"sync"
	"time"
)

// errIdle ends a logged-in session that saw no key for the idle time.
var errIdle = errors.New("console: idle: logged out")

// idleReader reads from r with an idle limit. A read of r is started
// only when the console asks for input (so a shell started from the
// menu gets the terminal's keys); once the limit passes without input,
// every read fails with errIdle until reset, so that nested prompts all
// return to the main loop, which logs out.
type idleReader struct {
	r       io.Reader
	results chan readResult
	mu      sync.Mutex
	limit   time.Duration // 0: none
	pending bool
	expired bool
	left    []byte
}

type readResult struct {
	b   []byte
	err error
}

func newIdleReader(r io.Reader) *idleReader {
	return &idleReader{r: r, results: make(chan readResult, 1)}
}

// reset starts a session with the given idle limit (0: none).
func (ir *idleReader) reset(limit time.Duration) {
	ir.mu.Lock()
	ir.limit, ir.expired = limit, false
	ir.mu.Unlock()
}

func (ir *idleReader) Read(p []byte) (int, error) {
	ir.mu.Lock()
	limit, expired := ir.limit, ir.expired
	ir.mu.Unlock()
	if expired {
		return 0, errIdle
	}
	if len(ir.left) > 0 {
		n := copy(p, ir.left)
		ir.left = ir.left[n:]
		return n, nil
	}
	if !ir.pending {
		ir.pending = true
		go func(n int) {
			buf := make([]byte, n)
			k, err := ir.r.Read(buf)
			ir.results <- readResult{buf[:k], err}
		}(max(len(p), 64))
	}
	var timeout <-chan time.Time
	if limit > 0 {
		t := time.NewTimer(limit)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case res := <-ir.results:
		ir.pending = false
		n := copy(p, res.b)
		ir.left = res.b[n:]
		return n, res.err
	case <-timeout:
		ir.mu.Lock()
		ir.expired = true
		ir.mu.Unlock()
		return 0, errIdle
	}
}
