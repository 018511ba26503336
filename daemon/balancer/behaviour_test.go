package balancer

import (
	"bytes"
	"fmt"
	"github.com/sipedge/sipedge/hal/testenv"
	"net"
	"strings"
	"testing"
	"time"
)

// TestCallsSpreadPerAlgorithm runs calls through two Cores under each
// algorithm and checks each Core's own INVITE and BYE counts.
func TestCallsSpreadPerAlgorithm(t *testing.T) {
	tests := []struct {
		alg     string
		weights [2]int
		check   func(a, b int) bool
		want    string
	}{
		{RoundRobin, [2]int{1, 1}, func(a, b int) bool { return a == 20 && b == 20 }, "20/20"},
		{Weighted, [2]int{3, 1}, func(a, b int) bool { return a == 30 && b == 10 }, "30/10"},
		{LeastLoad, [2]int{1, 1}, func(a, b int) bool { return a >= 10 && b >= 10 }, "both >= 10"},
		{CallHash, [2]int{1, 1}, func(a, b int) bool { return a >= 8 && b >= 8 }, "both >= 8"},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			l := newLab(t, 2, "core_uas.xml", func(o *Options) {
				o.Algorithm = tt.alg
				o.Cores[0].Weight, o.Cores[1].Weight = tt.weights[0], tt.weights[1]
			})
			ok, failed := l.runCalls("caller_uac.xml", 40, 40, 50)
			if ok != 40 || failed != 0 {
				t.Fatalf("%d ok, %d failed; want 40 ok", ok, failed)
			}
			time.Sleep(200 * time.Millisecond)
			var inv [2]int
			for i, name := range []string{"core1", "core2"} {
				l.cores[name].Stop()
				n, bye := coreCounts(l.cores[name])
				if n != bye {
					t.Errorf("%s: %d INVITE but %d BYE: in-dialog requests went astray", name, n, bye)
				}
				inv[i] = n
			}
			if !tt.check(inv[0], inv[1]) {
				t.Errorf("INVITEs per core %v, want %s", inv, tt.want)
			}
		})
	}
}

// TestCoreSideFixedPort: with sip.core_port set, calls go through SIPp
// Cores that answer on the Core-facing socket at that port (their
// responses to our Via), the port shows in `ctl cores`, and nothing is
// refused there (the Cores are trusted on it).
func TestCoreSideFixedPort(t *testing.T) {
	port := testenv.FreePort(t)
	l := newLab(t, 2, "core_uas.xml", func(o *Options) { o.CorePort = port })
	if got, want := l.tgt.coreSide(), fmt.Sprintf("udp:127.0.0.1:%d", port); len(got) != 1 || got[0] != want {
		t.Fatalf("core side %v, want [%s]", got, want)
	}
	ok, failed := l.runCalls("caller_uac.xml", 30, 30, 50)
	if ok != 30 || failed != 0 {
		t.Fatalf("%d ok, %d failed; want 30 ok", ok, failed)
	}
	if n := l.tgt.stats()["core_side_refused"]; n != 0 {
		t.Errorf("core_side_refused %d: the Cores' answers were refused on their socket", n)
	}
}

// TestCoreKilledMidRun kills one of three Cores under load: calls in
// setup fail over within the attempt, new calls avoid it once probes mark
// it down, calls ringing on it move to the next Core when it is marked
// down, and the caller sees no failure except for calls that were already
// up on the dead Core: their BYE cannot be answered. Those are told apart
// by the caller's own per-message counts (a timeout or an unexpected
// answer at the BYE step), not by sampling the dialog table, which a BYE
// in flight at the kill empties at once.
func TestCoreKilledMidRun(t *testing.T) {
	l := newLab(t, 3, "core_uas.xml", nil)
	caller := l.caller("caller_uac.xml", 300, 50, 0)
	time.Sleep(2 * time.Second)
	l.cores["core2"].Kill()
	upOnDead := l.core("core2").Calls
	if err := caller.Wait(60 * time.Second); err != nil {
		t.Logf("caller: %v", err)
	}
	ok, failed := caller.Stat("SuccessfulCall(C)"), caller.Stat("FailedCall(C)")
	atBye := byeStepFailures(caller)
	t.Logf("killed core2 with %d calls up on it; caller: %d ok, %d failed (%d at the BYE step); stats: failovers %d, timeouts %d",
		upOnDead, ok, failed, atBye, l.tgt.stats()["failovers"], l.tgt.stats()["attempt_timeouts"])
	if ok+failed != 300 {
		t.Errorf("%d ok, %d failed of 300 calls", ok, failed)
	}
	if failed > atBye {
		t.Errorf("%d calls failed but only %d at the BYE step (calls up on the killed Core): %d failed in setup", failed, atBye, failed-atBye)
	}
	if int64(atBye) > upOnDead+5 {
		t.Errorf("%d calls failed at the BYE step; %d were up on the killed Core (+5 BYEs in flight allowed)", atBye, upOnDead)
	}
	l.waitState(3*time.Second, StateInactive, "core2")
	if !l.tgt.hasEvent(EventCoreDown, "core2") {
		t.Errorf("no core-down event for core2")
	}
}

// byeStepFailures counts the caller's calls that failed at or after
// sending BYE: a BYE retransmitted to the end, or its 200 not received
// or replaced by another answer.
func byeStepFailures(p *sippProc) int {
	n, afterBye := 0, false
	for _, c := range p.StepCounts() {
		if strings.Contains(c.Name, "_BYE_Sent") {
			afterBye = true
		}
		if afterBye && (strings.HasSuffix(c.Name, "_Timeout") || strings.HasSuffix(c.Name, "_Unexp")) {
			n += c.N
		}
	}
	return n
}

// TestCoreComesBack: a Core that died and restarts is used again after
// up_after successful probes.
func TestCoreComesBack(t *testing.T) {
	l := newLab(t, 2, "core_uas.xml", func(o *Options) { o.Probe.UpAfter = 3 })
	l.cores["core1"].Kill()
	l.waitState(3*time.Second, StateInactive, "core1")
	ok, failed := l.runCalls("caller_uac.xml", 10, 20, 0)
	if ok != 10 || failed != 0 {
		t.Fatalf("with core1 down: %d ok, %d failed", ok, failed)
	}
	if r := l.core("core1").Routed; r != 0 {
		t.Fatalf("core1 down but routed %d calls", r)
	}
	start := time.Now()
	l.cores["core1"] = startCore(t, "core1b", "core_uas.xml", l.ports["core1"])
	l.waitState(5*time.Second, StateActive, "core1")
	if d := time.Since(start); d < 2*300*time.Millisecond {
		t.Errorf("core1 active after %v: sooner than up_after=3 probes at 300ms", d)
	}
	if !l.tgt.hasEvent(EventCoreUp, "core1") {
		t.Errorf("no core-up event for core1")
	}
	ok, failed = l.runCalls("caller_uac.xml", 20, 20, 0)
	if ok != 20 || failed != 0 {
		t.Fatalf("after return: %d ok, %d failed", ok, failed)
	}
	l.cores["core1"].Stop()
	if inv, bye := coreCounts(l.cores["core1"]); inv != 10 || bye != 10 {
		t.Errorf("restarted core1 got %d INVITE %d BYE, want 10/10", inv, bye)
	}
}

// TestDrainedCore: a drained Core gets no new calls while its calls
// finish, then core-drained is reported.
func TestDrainedCore(t *testing.T) {
	l := newLab(t, 2, "core_uas.xml", nil)
	long := l.caller("caller_uac.xml", 10, 50, 2500)
	deadline := time.Now().Add(3 * time.Second)
	for l.core("core1").Calls < 5 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := l.tgt.drain("core1"); err != nil {
		t.Fatal(err)
	}
	upOnDrained := l.core("core1").Calls
	if upOnDrained == 0 {
		t.Fatal("no calls up on core1 before the drain")
	}
	ok, failed := l.runCalls("caller_uac.xml", 10, 20, 0)
	if ok != 10 || failed != 0 {
		t.Fatalf("new calls while draining: %d ok, %d failed", ok, failed)
	}
	long.Wait(30 * time.Second)
	if ok, failed := long.Stat("SuccessfulCall(C)"), long.Stat("FailedCall(C)"); ok != 10 || failed != 0 {
		t.Fatalf("calls up during the drain: %d ok, %d failed", ok, failed)
	}
	if st := l.core("core1"); st.State != StateDraining || st.Calls != 0 {
		t.Errorf("core1 after drain: %+v", st)
	}
	if !l.tgt.hasEvent(EventCoreDrained, "core1") {
		t.Errorf("no core-drained event for core1")
	}
	l.cores["core1"].Stop()
	inv, bye := coreCounts(l.cores["core1"])
	if inv != 5 || bye != 5 {
		t.Errorf("drained core1 got %d INVITE, %d BYE; want the 5 from before the drain", inv, bye)
	}
}

// TestMaxCalls503: when every Core is full the caller gets 503 with
// Retry-After at once.
func TestMaxCalls503(t *testing.T) {
	l := newLab(t, 2, "core_uas.xml", func(o *Options) {
		o.Cores[0].MaxCalls, o.Cores[1].MaxCalls = 2, 2
	})
	p := l.caller("caller_uac.xml", 6, 100, 3000)
	p.Wait(30 * time.Second)
	ok, failed := p.Stat("SuccessfulCall(C)"), p.Stat("FailedCall(C)")
	if ok != 4 || failed != 2 {
		t.Errorf("%d ok, %d failed; want 4 ok and 2 refused", ok, failed)
	}
	if n := l.tgt.stats()["no_core"]; n != 2 {
		t.Errorf("503 no-core count %d, want 2", n)
	}
}

// TestCancel: a caller CANCELs a ringing call; the CANCEL reaches the
// Core's branch and the 487 comes back.
func TestCancel(t *testing.T) {
	l := newLab(t, 2, "core_cancel.xml", nil)
	ok, failed := l.runCalls("caller_cancel.xml", 10, 10, 0)
	if ok != 10 || failed != 0 {
		t.Fatalf("%d ok, %d failed; want 10 cancelled calls completing", ok, failed)
	}
	for name, p := range l.cores {
		p.Stop()
		c := p.Counts()
		if c["CANCEL_Recv"] != c["INVITE_Recv"] || c["INVITE_Recv"] != 5 {
			t.Errorf("%s: %v", name, c)
		}
	}
	if l.tgt.dialogs() != 0 {
		t.Errorf("%d dialogs left after cancelled calls", l.tgt.dialogs())
	}
}

// invite builds a raw INVITE toward the balancer at port.
func invite(port int, callID, extra string) string {
	return fmt.Sprintf("INVITE sip:1000@127.0.0.1:%d SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-%s;rport\r\n"+
		"From: <sip:t@127.0.0.1>;tag=f1\r\nTo: <sip:1000@127.0.0.1>\r\n"+
		"Call-ID: %s\r\nCSeq: 1 INVITE\r\n%sContent-Length: 0\r\n\r\n", port, callID, callID, extra)
}

// sendRaw sends one datagram to the balancer and returns the final (or
// only) response, "" when none came within a second.
func sendRaw(t *testing.T, port int, msg string) string {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.WriteToUDP([]byte(msg), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	last := ""
	for {
		c.SetReadDeadline(time.Now().Add(time.Second))
		n, _, err := c.ReadFromUDP(buf)
		if err != nil {
			return last
		}
		last = string(buf[:n])
		if !strings.HasPrefix(last, "SIP/2.0 1") {
			return last
		}
	}
}

// TestIntake feeds malformed and refused input: each gets its answer (or
// is dropped) and the balancer keeps serving calls.
func TestIntake(t *testing.T) {
	l := newLab(t, 2, "core_uas.xml", func(o *Options) { o.MaxMessageBytes = 4096 })
	big := invite(l.port, "big", "X-Pad: "+strings.Repeat("a", 5000)+"\r\n")
	tests := []struct {
		name string
		msg  string
		want string // response status line prefix; "" = dropped
	}{
		{"garbage", "hello world\r\n\r\n", ""},
		{"binary", string(bytes.Repeat([]byte{0xff, 0, 0x13}, 100)), ""},
		{"no Via", strings.Replace(invite(l.port, "nv", ""), "Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-nv;rport\r\n", "", 1), ""},
		{"no Call-ID", strings.Replace(invite(l.port, "nc", ""), "Call-ID: nc\r\n", "", 1), "SIP/2.0 400 Missing Call-ID"},
		{"no From", strings.Replace(invite(l.port, "nf", ""), "From: <sip:t@127.0.0.1>;tag=f1\r\n", "", 1), "SIP/2.0 400 Missing From"},
		{"no CSeq", strings.Replace(invite(l.port, "ncs", ""), "CSeq: 1 INVITE\r\n", "", 1), "SIP/2.0 400 Missing CSeq"},
		{"CSeq mismatch", strings.Replace(invite(l.port, "cm", ""), "CSeq: 1 INVITE", "CSeq: 1 BYE", 1), "SIP/2.0 400 CSeq Method Mismatch"},
		{"bad Content-Length", strings.Replace(invite(l.port, "bcl", ""), "Content-Length: 0", "Content-Length: 500", 1), "SIP/2.0 400 Bad Content-Length"},
		{"oversized", big, "SIP/2.0 513"},
		{"Max-Forwards 0", invite(l.port, "mf0", "Max-Forwards: 0\r\n"), "SIP/2.0 483"},
		{"OPTIONS to the balancer", strings.ReplaceAll(strings.Replace(invite(l.port, "opt", ""), "INVITE sip:1000@", "OPTIONS sip:", 1), "1 INVITE", "1 OPTIONS"), "SIP/2.0 200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sendRaw(t, l.port, tt.msg)
			if tt.want == "" && got != "" {
				t.Errorf("got %q, want no response", firstLine(got))
			}
			if tt.want != "" && !strings.HasPrefix(got, tt.want) {
				t.Errorf("got %q, want %q", firstLine(got), tt.want)
			}
		})
	}
	ok, failed := l.runCalls("caller_uac.xml", 20, 20, 0)
	if ok != 20 || failed != 0 {
		t.Fatalf("after malformed input: %d ok, %d failed", ok, failed)
	}
	if l.tgt.stats()["panics"] != 0 {
		t.Errorf("%d panics recovered", l.tgt.stats()["panics"])
	}
}

// TestNoCore503: with every Core disabled, an INVITE gets 503 with
// Retry-After at once.
func TestNoCore503(t *testing.T) {
	l := newLab(t, 2, "core_uas.xml", nil)
	l.tgt.disable("core1")
	l.tgt.drain("core2")
	start := time.Now()
	got := sendRaw(t, l.port, invite(l.port, "nocore", ""))
	if !strings.HasPrefix(got, "SIP/2.0 503") || !strings.Contains(got, "Retry-After: 5") {
		t.Fatalf("got %q, want 503 with Retry-After", got)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("503 took %v", d)
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\r\n")
	return l
}

// TestTCPCaller: a caller over TCP reaches UDP Cores; the balancer
// record-routes both its TCP and its UDP side, so ACK and BYE come back
// over the caller's connection and reach the right Core.
func TestTCPCaller(t *testing.T) {
	l := newLab(t, 2, "core_uas.xml", nil)
	p := l.caller("caller_uac.xml", 10, 10, 0, "-t", "t1")
	p.Wait(30 * time.Second)
	ok, failed := p.Stat("SuccessfulCall(C)"), p.Stat("FailedCall(C)")
	if ok != 10 || failed != 0 {
		t.Fatalf("%d ok, %d failed over TCP\n%s", ok, failed, p.Output())
	}
	for name, c := range l.cores {
		c.Stop()
		if inv, bye := coreCounts(c); inv != 5 || bye != 5 {
			t.Errorf("%s: %d INVITE, %d BYE; want 5/5", name, inv, bye)
		}
	}
}

// TestRingingCallMovesWhenCoreDies: a call ringing on a Core that dies
// (180 received, no final) moves to the next Core once probes mark the
// dead one down, and the caller gets its 200 from there.
func TestRingingCallMovesWhenCoreDies(t *testing.T) {
	l := newLabScenarios(t, []string{"core_cancel.xml", "core_uas.xml"}, nil)
	p := l.caller("caller_uac.xml", 2, 10, 0)
	deadline := time.Now().Add(3 * time.Second)
	for l.core("core1").Pending == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if l.core("core1").Pending != 1 {
		t.Fatalf("no call ringing on core1: %+v", l.tgt.cores())
	}
	l.cores["core1"].Kill()
	p.Wait(20 * time.Second)
	if ok, failed := p.Stat("SuccessfulCall(C)"), p.Stat("FailedCall(C)"); ok != 2 || failed != 0 {
		t.Fatalf("%d ok, %d failed; want the ringing call moved to core2", ok, failed)
	}
	l.cores["core2"].Stop()
	if inv, bye := coreCounts(l.cores["core2"]); inv != 2 || bye != 2 {
		t.Errorf("core2: %d INVITE, %d BYE; want 2/2", inv, bye)
	}
}
