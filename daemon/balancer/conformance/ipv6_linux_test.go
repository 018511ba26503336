package conformance

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/internal/daemontest"
	"github.com/sipedge/sipedge/daemon/internal/sipptest"
	"github.com/sipedge/sipedge/hal/testenv"
)

// Issue 16 item 5: calls over IPv6 and across address families, with
// SIPp as caller and Core (the balancer's scenarios: the caller honours
// Record-Route for its ACK and BYE, the Core copies it), through the real
// binary listening on udp:127.0.0.1:P and udp:[::1]:P (or, as in the
// issue's report, on udp:[::1]:P alone).

// familyCase is one call path: the caller's and the Core's address, and
// whether the balancer listens on [::1] only (else on both families).
type familyCase struct {
	name         string
	caller, core netip.Addr
	v6only       bool
}

var familyCases = []familyCase{
	{"ipv6-listener-only", trusted6, trusted6, true}, // the report
	{"ipv6", trusted6, trusted6, false},
	{"ipv4-caller-ipv6-core", trusted4, trusted6, false},
	{"ipv6-caller-ipv4-core", trusted6, trusted4, false},
	{"ipv4", trusted4, trusted4, false}, // the reference
}

// knownBrokenCalls: as knownBroken, for the call paths (empty: every
// path works; a path that breaks goes here with what it does instead).
var knownBrokenCalls = map[string]string{}

const calls = 3

// TestIPv6Calls places calls on each path and checks that each is set
// up and ended at the Core (its ACK and BYE arrive there), and that the Core
// saw our Record-Route for each side: one entry when both sides share a
// listener, two (RFC 5658: the Core's side on top) when they do not.
func TestIPv6Calls(t *testing.T) {
	testenv.Short(t, "places SIPp calls on five paths for about 25 s")
	testenv.MustHaveSIPp(t)
	testenv.SipedgeBinary(t)
	results := map[string]string{}
	for _, fc := range familyCases {
		t.Run(fc.name, func(t *testing.T) {
			results[fc.name] = callPath(t, fc)
		})
	}
	for _, fc := range familyCases {
		p, ran := results[fc.name]
		why := knownBrokenCalls[fc.name]
		switch {
		case !ran: // filtered out with -run
		case p != "" && why != "":
			t.Logf("known broken %s: %s (%s)", fc.name, p, why)
		case p != "":
			t.Errorf("%s: %s", fc.name, p)
		case why != "":
			t.Errorf("%s now passes: remove it from knownBrokenCalls (%s)", fc.name, why)
		}
	}
}

// bracket writes an address as a SIP host.
func bracket(a netip.Addr) string {
	if a.Is6() {
		return "[" + a.String() + "]"
	}
	return a.String()
}

// callPath runs one call path and returns what is wrong with it ("" when
// nothing).
func callPath(t *testing.T, fc familyCase) string {
	port := testenv.FreePort(t)
	corePort := testenv.FreePort(t)
	coreDir := t.TempDir()
	core := sipptest.Start(t, sipptest.Options{Name: "core", IP: fc.core.String(), Timeout: 60 * time.Second, Dir: coreDir},
		"-sf", "../testdata/core_uas.xml", "-p", strconv.Itoa(corePort),
		"-trace_msg", "-message_file", filepath.Join(coreDir, "messages.log"))
	listen := fmt.Sprintf(`"udp:127.0.0.1:%d", "udp:[::1]:%d"`, port, port)
	if fc.v6only {
		listen = fmt.Sprintf(`"udp:[::1]:%d"`, port)
	}
	d := daemontest.New(t)
	d.WriteConfig(fmt.Sprintf(`node: {name: conformance-calls, profile: single, data_dir: %q}
log: {level: %s, format: text}
web: {listen: ""}
sip:
  listen: [%s]
  probe: {interval: 500ms, timeout: 400ms, down_after: 3, up_after: 1}
  retry: {attempt_timeout: 2s, max_tries: 1}
  cores:
    - {name: core1, address: "%s:%d"}
`, d.DataDir(), logLevel(), listen, bracket(fc.core), corePort))
	d.Start()
	// Not a fatal wait: on the broken paths the Core's probes may never
	// be answered, and that is the finding.
	var problems []string
	if !coreActive(d, 10*time.Second) {
		problems = append(problems, "the Core never became active (its OPTIONS probes unanswered)")
	}
	caller := sipptest.Start(t, sipptest.Options{Name: "caller", IP: fc.caller.String(), Timeout: 60 * time.Second},
		fmt.Sprintf("%s:%d", bracket(fc.caller), port), "-sf", "../testdata/caller_uac.xml",
		"-m", strconv.Itoa(calls), "-r", "10", "-d", "200", "-recv_timeout", "5000")
	caller.Wait(45 * time.Second)
	core.Stop()
	if ok := caller.Stat("SuccessfulCall(C)"); ok != calls {
		problems = append(problems, fmt.Sprintf("%d of %d calls succeeded at the caller", ok, calls))
	}
	c := core.Counts()
	if c["INVITE_Recv"] != calls || c["ACK_Recv"] != calls || c["BYE_Recv"] != calls {
		problems = append(problems, fmt.Sprintf("the Core got %d INVITEs, %d ACKs and %d BYEs, want %d each (calls left up)",
			c["INVITE_Recv"], c["ACK_Recv"], c["BYE_Recv"], calls))
	}
	want := []string{fmt.Sprintf("<sip:%s:%d;lr>", bracket(fc.core), port)}
	if fc.caller != fc.core {
		want = append(want, fmt.Sprintf("<sip:%s:%d;lr>", bracket(fc.caller), port))
	}
	if got := inviteRecordRoute(t, filepath.Join(coreDir, "messages.log")); strings.Join(got, ",") != strings.Join(want, ",") {
		problems = append(problems, fmt.Sprintf("Record-Route at the Core %q, want %q", got, want))
	}
	if len(problems) > 0 {
		errs, _ := os.ReadFile(filepath.Join(caller.Dir, "errors.log"))
		t.Logf("caller output:\n%s\ncaller errors:\n%s\ndaemon log:\n%s", tail(caller.Output(), 3000), tail(string(errs), 3000), tail(d.Log.String(), 6000))
	}
	return strings.Join(problems, "; ")
}

// coreActive waits up to d for the daemon's one Core to be active.
func coreActive(d *daemontest.Daemon, within time.Duration) bool {
	for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		var st struct {
			Cores []struct{ State string } `json:"cores"`
		}
		d.CtlJSON(&st, "cores")
		if len(st.Cores) == 1 && st.Cores[0].State == "active" {
			return true
		}
	}
	return false
}

// inviteRecordRoute reads SIPp's message log and returns the Record-Route
// values of the first INVITE the Core received, top first.
func inviteRecordRoute(t *testing.T, file string) []string {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Logf("sipp message log: %v", err)
		return nil
	}
	s := string(b)
	i := strings.Index(s, "\nINVITE ")
	if i < 0 {
		return nil
	}
	msg := s[i+1:]
	if j := strings.Index(msg, "\n\n"); j >= 0 {
		msg = msg[:j]
	}
	if j := strings.Index(msg, "\r\n\r\n"); j >= 0 {
		msg = msg[:j]
	}
	var rr []string
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimRight(l, "\r")
		if n, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(strings.TrimSpace(n), "record-route") {
			for _, e := range strings.Split(v, ",") {
				rr = append(rr, strings.TrimSpace(e))
			}
		}
	}
	return rr
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
