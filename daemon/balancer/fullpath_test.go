package balancer

import (
	"github.com/sipedge/sipedge/hal/testenv"
	"os"
	"strings"
	"testing"
	"time"
)

// fullPathEnv, set to 1, runs the balancer's tests with every message on
// the full path (Options.FullPath, sip.raw_paths: false): `make test`
// runs the behaviour tests a second time so (FULLPATH_TESTS).
const fullPathEnv = "SIPEDGE_BALANCER_FULLPATH"

// testOptions applies the test run's choices to a test's options.
func testOptions(t *testing.T, opt *Options) {
	if os.Getenv(fullPathEnv) == "1" {
		opt.FullPath = true
	}
	if opt.CorePort == 0 {
		// The default (the listen port + 10) could be a port another
		// test of the run holds: a port of the test's own.
		opt.CorePort = testenv.FreePort(t)
	}
}

// TestFullPathSwitch: the same INVITE, with compact header names, is
// forwarded from its bytes by the raw path (the Core sees "v:" as sent)
// and rendered by the full path with FullPath set (the Core sees "Via:"):
// the switch really takes the raw paths out, and each path forwards
// the call.
func TestFullPathSwitch(t *testing.T) {
	t.Setenv(fullPathEnv, "") // this test sets the switch itself
	for _, full := range []bool{false, true} {
		l := newTxLab(t, 1, func(o *Options) { o.FullPath = full })
		c := l.caller.LocalAddr().String()
		l.send(l.caller, "INVITE sip:svc@"+l.addr.String()+" SIP/2.0\r\n"+
			"v: SIP/2.0/UDP "+c+";branch=z9hG4bK-fp\r\nMax-Forwards: 70\r\n"+
			"f: <sip:caller@"+c+">;tag=f-fp\r\nt: <sip:svc@"+l.addr.String()+">\r\ni: fp\r\n"+
			"CSeq: 1 INVITE\r\nl: 0\r\n\r\n")
		buf := make([]byte, 65536)
		l.cores[0].SetReadDeadline(time.Now().Add(3 * time.Second))
		var got string
		for {
			n, err := l.cores[0].Read(buf)
			if err != nil {
				t.Fatalf("full=%v: no INVITE at the Core", full)
			}
			if got = string(buf[:n]); strings.HasPrefix(got, "INVITE ") {
				break
			}
		}
		if raw := strings.Contains(got, "\r\nv: SIP/2.0/UDP "+c); raw == full {
			t.Errorf("full=%v: forwarded as\n%s", full, got)
		}
	}
}
