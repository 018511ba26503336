package balancer

import (
	"time"

	"testing"

	"github.com/sipedge/sipedge/daemon/internal/sipptest"
)

// sippProc is a SIPp peer started by the test, waited on and stopped by
// its PID (daemon/internal/sipptest).
type sippProc = sipptest.Proc

// startSIPp runs sipp on 127.0.0.1 with the harness's standard flags.
func startSIPp(t testing.TB, name string, timeout time.Duration, args ...string) *sippProc {
	t.Helper()
	return sipptest.Start(t, sipptest.Options{Name: name, Timeout: timeout}, args...)
}
