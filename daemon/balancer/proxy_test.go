package balancer

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestFinalRetransmittedUntilAck: a non-2xx final to an INVITE over UDP,
// forwarded or our own, is sent again at T1, then 2*T1, ... until the
// caller's ACK (RFC 3261 17.2.1, Timer G): a caller that stopped
// retransmitting at our 100 Trying and lost the one datagram would hang.
// After the ACK the retransmissions stop and the transaction goes after
// TxLinger.
func TestFinalRetransmittedUntilAck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		code  int
		setup func(l *txLab)
		core  func(l *txLab) // the Core's part, nil when no Core is asked
	}{
		{"forwarded 486", 486, nil, func(l *txLab) {
			_, inv := l.coreRecv(2*time.Second, "INVITE", isRequest(sip.INVITE))
			l.send(l.cores[0], reply(inv, 486, "Busy Here", "busy", l.cores[0]))
			l.recv(l.cores[0], 2*time.Second, "ACK of the 486 at the Core", isRequest(sip.ACK))
		}},
		{"own 503, no Core", 503, func(l *txLab) { l.b.DisableCore("core1") }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newTxLab(t, 1, func(o *Options) { o.TxLinger = 300 * time.Millisecond })
			if tc.setup != nil {
				tc.setup(l)
			}
			id := "g" + sip.GenerateBranchN(8)
			l.send(l.caller, l.invite(id))
			if tc.core != nil {
				tc.core(l)
			}
			const d = 3 * time.Second
			first, t0 := l.recv(l.caller, d, "final response", isResponse(tc.code))
			// No ACK: the final must come again after T1, then after 2*T1.
			_, t1 := l.recv(l.caller, d, "first retransmission of the final", isResponse(tc.code))
			_, t2 := l.recv(l.caller, d, "second retransmission of the final", isResponse(tc.code))
			if g := t1.Sub(t0); g < 350*time.Millisecond || g > 1200*time.Millisecond {
				t.Errorf("first retransmission after %v, want about T1 (500ms)", g)
			}
			if g1, g2 := t1.Sub(t0), t2.Sub(t1); g2 < 800*time.Millisecond || g2 > 2000*time.Millisecond || g2 < g1 {
				t.Errorf("second retransmission %v after the first (first after %v), want about 2*T1", g2, g1)
			}
			if n := l.b.stats.FinalsRetransmitted.Load(); n < 2 {
				t.Errorf("finals_retransmitted %d, want >= 2", n)
			}
			l.send(l.caller, l.ackOf(id, first.(*sip.Response)))
			if m, _ := l.next(l.caller, 2500*time.Millisecond, isResponse(tc.code)); m != nil {
				t.Fatal("the final was retransmitted after the caller's ACK")
			}
			if srv, _ := l.b.Transactions(); srv != 0 {
				t.Errorf("%d server transactions left TxLinger after the ACK", srv)
			}
			if n := l.b.stats.FinalsUnacked.Load(); n != 0 {
				t.Errorf("finals_unacked %d after an ACK", n)
			}
		})
	}
}

// TestFinalUnackedEndsAtTimerH: without an ACK the transaction outlives
// TxLinger, retransmitting; Timer H (run here at once: it is 32 s) ends
// it, counted in finals_unacked, and the retransmissions stop.
func TestFinalUnackedEndsAtTimerH(t *testing.T) {
	t.Parallel()
	l := newTxLab(t, 1, func(o *Options) { o.TxLinger = 100 * time.Millisecond })
	l.b.DisableCore("core1")
	l.send(l.caller, l.invite("h"+sip.GenerateBranchN(8)))
	l.recv(l.caller, 2*time.Second, "503", isResponse(503))
	l.recv(l.caller, 2*time.Second, "retransmitted 503", isResponse(503))
	var st *serverTx
	l.b.stx.each(func(_ string, v *serverTx) bool { st = v; return true })
	if st == nil {
		t.Fatal("the unACKed transaction did not outlive TxLinger")
	}
	l.b.endTx(st) // Timer H
	if n := l.b.stats.FinalsUnacked.Load(); n != 1 {
		t.Errorf("finals_unacked %d, want 1", n)
	}
	if srv, _ := l.b.Transactions(); srv != 0 {
		t.Errorf("%d server transactions after Timer H", srv)
	}
	if m, _ := l.next(l.caller, 1500*time.Millisecond, isResponse(503)); m != nil {
		t.Error("the 503 was retransmitted after Timer H")
	}
}

// TestCore503Becomes500: when every Core tried answered 503, the caller
// gets 500 (RFC 3261 16.7 step 6), without the Cores' Retry-After: a 503
// from the VIP would take the whole edge out of a carrier's routing. Our
// own 503 (no Core can take the call) keeps its Retry-After.
func TestCore503Becomes500(t *testing.T) {
	t.Parallel()
	t.Run("every Core answered 503", func(t *testing.T) {
		t.Parallel()
		l := newTxLab(t, 2, nil)
		id := "u" + sip.GenerateBranchN(8)
		l.send(l.caller, l.invite(id))
		asked := map[int]bool{}
		for range 2 {
			i, inv := l.coreRecv(3*time.Second, "INVITE", isRequest(sip.INVITE))
			if asked[i] {
				t.Fatalf("core%d asked twice", i+1)
			}
			asked[i] = true
			l.send(l.cores[i], reply(inv, 503, "Service Unavailable", "full", l.cores[i], "Retry-After: 30"))
			l.recv(l.cores[i], 2*time.Second, "ACK of the 503 at the Core", isRequest(sip.ACK))
		}
		m, _ := l.recv(l.caller, 2*time.Second, "final response", isFinal)
		res := m.(*sip.Response)
		if res.StatusCode != 500 || res.GetHeader("Retry-After") != nil {
			t.Fatalf("caller got %d %s (Retry-After %v), want 500 without Retry-After", res.StatusCode, res.Reason, res.GetHeader("Retry-After"))
		}
		l.send(l.caller, l.ackOf(id, res))
		if n := l.b.stats.Failovers.Load(); n != 1 {
			t.Errorf("failovers %d, want 1", n)
		}
	})
	t.Run("own 503 when no Core can take the call", func(t *testing.T) {
		t.Parallel()
		l := newTxLab(t, 1, nil)
		l.b.DisableCore("core1")
		id := "o" + sip.GenerateBranchN(8)
		l.send(l.caller, l.invite(id))
		m, _ := l.recv(l.caller, 2*time.Second, "final response", isFinal)
		res := m.(*sip.Response)
		if res.StatusCode != 503 || res.GetHeader("Retry-After") == nil {
			t.Fatalf("caller got %d %s, want our 503 with Retry-After", res.StatusCode, res.Reason)
		}
		l.send(l.caller, l.ackOf(id, res))
	})
}

// TestLateAnswerEnded: a Core that answers 2xx after its attempt was
// given up (the attempt timer fired and the call went to the next Core)
// gets an ACK and a BYE built from its 2xx (Contact as Request-URI, no
// route set through the balancer itself, its To tag, CSeq 1 ACK / 2 BYE),
// the caller never sees that 2xx, and a retransmitted 2xx is ACKed again
// without a second BYE. Also when the 2xx comes after the caller's
// transaction has ended, and when it takes the parsed path.
func TestLateAnswerEnded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		ended bool // the other Core answers 486 and the transaction ends first
		fold  bool // a folded header line: the full parser's path
	}{
		{"while the call rings on the next Core", false, false},
		{"parsed path", false, true},
		{"after the transaction ended", true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newTxLab(t, 2, func(o *Options) {
				o.Retry.AttemptTimeout = 300 * time.Millisecond
				o.TxLinger = 200 * time.Millisecond
			})
			id := "l" + sip.GenerateBranchN(8)
			l.send(l.caller, l.invite(id))
			slow, inv := l.coreRecv(2*time.Second, "INVITE", isRequest(sip.INVITE))
			next, inv2 := l.coreRecv(3*time.Second, "INVITE after the attempt timer", isRequest(sip.INVITE))
			if next == slow {
				t.Fatalf("the INVITE went to core%d twice", slow+1)
			}
			a, b := l.cores[slow], l.cores[next]
			if tc.ended {
				l.send(b, reply(inv2, 486, "Busy Here", "busy", b))
				m, _ := l.recv(l.caller, 2*time.Second, "486", isResponse(486))
				l.send(l.caller, l.ackOf(id, m.(*sip.Response)))
				deadline := time.Now().Add(3 * time.Second)
				for srv, _ := l.b.Transactions(); srv != 0; srv, _ = l.b.Transactions() {
					if time.Now().After(deadline) {
						t.Fatal("the transaction did not end")
					}
					time.Sleep(20 * time.Millisecond)
				}
			} else {
				l.send(b, reply(inv2, 180, "Ringing", "ring", b))
			}
			late := reply(inv, 200, "OK", "late", a)
			if tc.fold {
				late = strings.Replace(late, "Content-Length:", "Subject: late\r\n answer\r\nContent-Length:", 1)
			}
			l.send(a, late)
			m, _ := l.recv(a, 2*time.Second, "ACK of the late 2xx", isRequest(sip.ACK))
			ack := m.(*sip.Request)
			m, _ = l.recv(a, 2*time.Second, "BYE of the late 2xx", isRequest(sip.BYE))
			bye := m.(*sip.Request)
			contact := "sip:core@" + a.LocalAddr().String()
			for _, r := range []*sip.Request{ack, bye} {
				tag, _ := r.To().Params.Get("tag")
				ftag, _ := r.From().Params.Get("tag")
				if r.Recipient.String() != contact || tag != "late" || ftag != "f-"+id || r.CallID().Value() != id || r.Route() != nil {
					t.Errorf("%s: R-URI %s, To tag %q, From tag %q, Call-ID %s, Route %v; want %s, late, f-%s, %s, none",
						r.Method, r.Recipient.String(), tag, ftag, r.CallID().Value(), r.Route(), contact, id, id)
				}
				if v := r.Via(); v.Host+":"+strconv.Itoa(v.Port) != l.towardCores() {
					t.Errorf("%s: Via %s, want the balancer's Core-facing socket %s", r.Method, v.Value(), l.towardCores())
				}
			}
			if ack.CSeq().Value() != "1 ACK" || bye.CSeq().Value() != "2 BYE" {
				t.Errorf("CSeq ACK %q BYE %q, want 1 ACK and 2 BYE", ack.CSeq().Value(), bye.CSeq().Value())
			}
			l.send(a, reply(bye, 200, "OK", "late", a))
			l.send(a, late) // the Core's 2xx again: an ACK again, no second BYE
			var acks, byes int
			for _, m := range l.collect(a, 1200*time.Millisecond) {
				if r, ok := m.(*sip.Request); ok {
					acks += bool2int(r.Method == sip.ACK)
					byes += bool2int(r.Method == sip.BYE)
				}
			}
			if acks != 1 || byes != 0 {
				t.Errorf("after the retransmitted 2xx and the BYE's 200: %d ACK, %d BYE; want 1 ACK, no BYE", acks, byes)
			}
			for _, m := range l.collect(l.caller, 100*time.Millisecond) {
				if r, ok := m.(*sip.Response); ok && r.StatusCode == 200 {
					t.Errorf("the caller got the abandoned Core's 2xx:\n%s", r)
				}
			}
			if n := l.b.stats.LateAnswers.Load(); n != 1 {
				t.Errorf("late_answers_ended %d, want 1", n)
			}
		})
	}
}

func bool2int(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestTimerCRestartsOnProvisional: Timer C runs from the last
// provisional (RFC 3261 16.8), not from the first: a second 180 pushes
// the CANCEL and the 408 on.
func TestTimerCRestartsOnProvisional(t *testing.T) {
	t.Parallel()
	const timerC = 600 * time.Millisecond
	l := newTxLab(t, 1, func(o *Options) { o.InviteTimeout = timerC })
	id := "c" + sip.GenerateBranchN(8)
	l.send(l.caller, l.invite(id))
	_, inv := l.coreRecv(3*time.Second, "INVITE", isRequest(sip.INVITE))
	l.send(l.cores[0], reply(inv, 180, "Ringing", "r", l.cores[0]))
	time.Sleep(400 * time.Millisecond)
	second := time.Now()
	l.send(l.cores[0], reply(inv, 180, "Ringing", "r", l.cores[0]))
	_, at := l.recv(l.cores[0], 3*time.Second, "CANCEL at the Core", isRequest(sip.CANCEL))
	if d := at.Sub(second); d < timerC-20*time.Millisecond || d > timerC+300*time.Millisecond {
		t.Fatalf("CANCEL %v after the second 180, want Timer C (%v) after it", d, timerC)
	}
	m, _ := l.recv(l.caller, 2*time.Second, "final response", isFinal)
	if res := m.(*sip.Response); res.StatusCode != 408 {
		t.Fatalf("caller got %d, want 408", res.StatusCode)
	}
}

// TestRequestRetransmittedUntilAttemptTimer: an INVITE a Core does not
// answer goes to it again at T1, then 2*T1 later (RFC 3261 17.1.1.2),
// until the attempt timer; with no other Core the caller gets 408 then,
// and nothing more reaches the Core. One wheel entry serves both timers.
func TestRequestRetransmittedUntilAttemptTimer(t *testing.T) {
	t.Parallel()
	const attempt = 2 * time.Second
	l := newTxLab(t, 1, func(o *Options) { o.Retry.AttemptTimeout = attempt })
	id := "r" + sip.GenerateBranchN(8)
	start := time.Now()
	l.send(l.caller, l.invite(id))
	var at []time.Duration
	for {
		m, when := l.next(l.cores[0], time.Until(start.Add(attempt-100*time.Millisecond)), isRequest(sip.INVITE))
		if m == nil {
			break
		}
		at = append(at, when.Sub(start))
	}
	want := []time.Duration{0, t1, 3 * t1}
	if len(at) != len(want) {
		t.Fatalf("INVITE reached the Core at %v, want at %v", at, want)
	}
	for i := range want {
		if d := at[i] - want[i]; d < -20*time.Millisecond || d > 150*time.Millisecond {
			t.Errorf("INVITE copy %d at %v, want %v", i, at[i], want[i])
		}
	}
	m, when := l.recv(l.caller, time.Second, "final response", isFinal)
	if res := m.(*sip.Response); res.StatusCode != 408 {
		t.Fatalf("caller got %d, want 408", res.StatusCode)
	}
	if d := when.Sub(start); d < attempt-20*time.Millisecond || d > attempt+300*time.Millisecond {
		t.Errorf("408 after %v, want the attempt timer (%v)", d, attempt)
	}
	if m, _ := l.next(l.cores[0], 700*time.Millisecond, isRequest(sip.INVITE)); m != nil {
		t.Error("the INVITE went to the Core again after the attempt timer")
	}
}
