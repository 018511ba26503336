package balancer

import (
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// TestSustainedLoad runs SIPEDGE_LOAD_CPS calls per second (default 500)
// for SIPEDGE_LOAD_SECONDS (default 10) through the balancer and checks
// zero failed calls, every BYE at a Core, and (in-process) that the
// goroutine count does not grow with the load. It runs only with
// SIPEDGE_LOAD=1: the CI machine is shared.
func TestSustainedLoad(t *testing.T) {
	if os.Getenv("SIPEDGE_LOAD") != "1" {
		t.Skip("set SIPEDGE_LOAD=1 (and SIPEDGE_LOAD_CPS, SIPEDGE_LOAD_SECONDS)")
	}
	cps, secs := envInt("SIPEDGE_LOAD_CPS", 500), envInt("SIPEDGE_LOAD_SECONDS", 10)
	l := newLab(t, 2, "core_uas.xml", func(o *Options) { o.Probe.Timeout = time.Second })
	g0 := runtime.NumGoroutine()
	p := l.caller("caller_uac.xml", cps*secs, cps, 100, "-l", strconv.Itoa(cps*5), "-buff_size", "8388608")
	var gMax int
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-p.Done():
				return
			case <-time.After(500 * time.Millisecond):
				if g := runtime.NumGoroutine(); g > gMax {
					gMax = g
				}
			}
		}
	}()
	p.Wait(time.Duration(secs+60) * time.Second)
	<-done
	ok, failed := p.Stat("SuccessfulCall(C)"), p.Stat("FailedCall(C)")
	t.Logf("%d CPS x %ds: %d ok, %d failed; goroutines %d -> max %d; stats %v", cps, secs, ok, failed, g0, gMax, l.tgt.stats())
	if ok != cps*secs || failed != 0 {
		t.Errorf("%d ok, %d failed of %d", ok, failed, cps*secs)
	}
	byes := 0
	for _, c := range l.cores {
		c.Stop()
		_, b := coreCounts(c)
		byes += b
	}
	if byes != cps*secs {
		t.Errorf("Cores got %d BYE, want %d", byes, cps*secs)
	}
	if _, in := l.tgt.(*inProcess); in && gMax > g0+20 {
		t.Errorf("goroutines grew with the load: %d -> %d", g0, gMax)
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}
