package console

import (
	"context"
	"errors"
	"time"

	"github.com/sipedge/sipedge/daemon/ctl"
)

// DaemonWait bounds how long a console session that starts before the
// daemon answers (at boot, PID 1 starts both at once) waits for it
// before the login and the first banner.
const DaemonWait = 30 * time.Second

// waitDaemon waits (at most o.DaemonWait) until the daemon answers its
// control socket, saying once that it waits; it returns whether it
// answered. A session whose daemon is up goes on at once.
func (c *console) waitDaemon() bool {
	wait := c.o.DaemonWait
	if wait == 0 {
		wait = DaemonWait
	}
	deadline := time.Now().Add(wait)
	said := false
	for {
		ctx, cancel := context.WithTimeout(c.ctx, min(5*time.Second, max(time.Until(deadline), 100*time.Millisecond)))
		err := c.o.Client.Call(ctx, MethodSession, nil, &SessionInfo{})
		cancel()
		if answered(err) {
			if said {
				c.printf(" the daemon answers.\n")
			}
			return true
		}
		if time.Now().After(deadline) || c.ctx.Err() != nil {
			if said {
				c.printf(" no answer after %v.\n", wait)
			}
			return false
		}
		if !said {
			c.printf("Waiting for the daemon to start (at most %v)...", wait)
			said = true
		}
		select {
		case <-c.ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// answered: the daemon answered the call (an error it returned counts;
// a socket that is absent, refuses or times out does not).
func answered(err error) bool {
	var e *ctl.Error
	return err == nil || errors.As(err, &e) && e.Code != ctl.CodeUnreachable
}
