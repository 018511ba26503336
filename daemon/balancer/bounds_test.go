package balancer

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sipedge/sipedge/hal/testenv"
)

// TestMaxForwardsNotDigits: a Max-Forwards value that is not digits
// between SIP whitespace (a vertical tab, a no-break space) is a 400 on
// both paths (UDP: the raw scan; TCP: sipgo's parse); the raw path once
// trimmed "\v5" one way and located it another, and forwarded
// "Max-Forwards:45".
func TestMaxForwardsNotDigits(t *testing.T) {
	l := startEdgeLab(t, "", "")
	caller := newPeer(t, "127.0.0.5")
	tc, err := net.Dial("tcp", l.bal.String())
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	rd := bufio.NewReader(tc)
	for i, mf := range []string{"\v5", "\u00a05", "5\v", "5 5", "", "0x5", "\t\v 5"} {
		for _, tcp := range []bool{false, true} {
			name := fmt.Sprintf("%q tcp=%v", mf, tcp)
			msg := caller.request("INVITE", "sip:svc@"+l.bal.String(), fmt.Sprintf("mf-%d-%v", i, tcp), "t", "", 1, "")
			msg = strings.Replace(msg, "Max-Forwards: 70", "Max-Forwards:"+mf, 1)
			var got string
			if tcp {
				msg = strings.Replace(msg, "SIP/2.0/UDP", "SIP/2.0/TCP", 1)
				tc.SetDeadline(time.Now().Add(3 * time.Second))
				tc.Write([]byte(msg))
				got, _ = rd.ReadString('\n')
				for line := got; line != "\r\n" && line != ""; line, _ = rd.ReadString('\n') {
				}
			} else {
				caller.send(l.bal, msg)
				got = caller.expect(3*time.Second, "SIP/2.0 ")
			}
			if !strings.HasPrefix(got, "SIP/2.0 400") {
				t.Errorf("%s: answer %.40q, want 400", name, got)
			}
			if m := l.core.next(200*time.Millisecond, "INVITE"); m != "" {
				t.Errorf("%s: forwarded to the Core:\n%s", name, m)
			}
		}
	}
}

// TestNextHopGoneAnswered: the Core of a call that is up stops
// answering; the caller's BYE gets 504 Server Time-out when
// attempt_timeout (1 s here) runs out, well within a caller's 5 s
// (before, a 408 came after Timer F's 32 s).
func TestNextHopGoneAnswered(t *testing.T) {
	l := startEdgeLab(t, "", "")
	caller := newPeer(t, "127.0.0.5")
	_, tag := l.call(caller, "gone-1")
	l.core.silent.Store(silentBye)
	start := time.Now()
	caller.send(l.bal, caller.request("BYE", "sip:core@"+l.core.addr.String(), "gone-1", "ct-gone-1", tag, 2,
		"Route: <sip:"+l.bal.String()+";lr>\r\n"))
	got := caller.expect(5*time.Second, "SIP/2.0 ")
	if !strings.HasPrefix(got, "SIP/2.0 504") {
		t.Fatalf("answer %.40q after %v, want 504 within 5 s", got, time.Since(start))
	}
	t.Logf("504 after %v (attempt_timeout 1s)", time.Since(start).Round(time.Millisecond))
}

// TestOwnAnswersNotAmplified: INVITEs whose source is a spoofed victim
// (a socket of the test on 127.0.0.6: the balancer answers there) draw
// our own final answers; they are not retransmitted (Timer G) to a
// source outside trusted: each INVITE draws at most a 100 Trying and
// one final, under twice its size. Before, the final went 5 times
// within the window (Timer G: T1 doubling to T2, up to Timer H's 32 s).
func TestOwnAnswersNotAmplified(t *testing.T) {
	l := startEdgeLab(t, "", "")
	vic := newPeer(t, "127.0.0.6")
	for _, tc := range []struct {
		name   string
		window time.Duration // Timer G would have sent the final 4 more times
		setup  func()
	}{
		{"the Core does not answer: 408 after attempt_timeout", 12 * time.Second, func() { l.core.silent.Store(silentInvite) }},
		{"no Core can take the call: 503 at once", 6 * time.Second, func() {
			if _, _, code := l.d.Ctl("cores", "disable", "core1"); code != 0 {
				t.Fatal("ctl cores disable failed")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup()
			sent := 0
			for i := 0; i < 5; i++ {
				msg := vic.request("INVITE", "sip:svc@"+l.bal.String(), fmt.Sprintf("amp-%d-%d", tc.window/time.Second, i), "v", "", 1, "")
				vic.send(l.bal, msg)
				sent += len(msg)
			}
			fin := vic.fin.Load()
			got := vic.drain(tc.window)
			fin = vic.fin.Load() - fin
			ratio := float64(got) / float64(sent)
			t.Logf("bytes in %d (5 INVITEs), our answers out %d: ratio %.2f; %d final responses", sent, got, ratio, fin)
			if ratio > 2 {
				t.Errorf("ratio %.2f > 2", ratio)
			}
			if fin != 5 {
				t.Errorf("%d final responses to 5 INVITEs, want one each", fin)
			}
			if got == 0 {
				t.Error("no answer at all")
			}
		})
	}
}

// TestNoDNSOnPacketPath: requests naming hosts (the Request-URI of BYEs
// from the box itself, a trusted source) do not hold up another
// caller's call: its 100 Trying comes within 10 ms. The daemon runs in a
// mount namespace whose resolv.conf names a server of the test that
// never answers: a lookup on the packet path would hold a worker ~1 s
// per name.
func TestNoDNSOnPacketPath(t *testing.T) {
	testenv.MustHaveRoot(t)
	testenv.MustHaveExec(t, "unshare")
	dns, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 153), Port: 53})
	if err != nil {
		testenv.Missing(t, "a DNS blackhole on 127.0.0.153:53: %v", err)
		return
	}
	defer dns.Close()
	go func() { // read and drop every query
		buf := make([]byte, 1500)
		for {
			if _, _, err := dns.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(resolv, []byte("nameserver 127.0.0.153\noptions timeout:5 attempts:1\n"), 0o644)
	l := startEdgeLab(t, "", "", "unshare", "-m", "sh", "-c", `mount --bind "$0" /etc/resolv.conf && exec "$@"`, resolv)
	box, caller := newPeer(t, "127.0.0.1"), newPeer(t, "127.0.0.5")
	var delays []time.Duration
	for i := 0; i < 5; i++ {
		for j := 0; j < 8; j++ {
			id := fmt.Sprintf("dns-%d-%d", i, j)
			box.send(l.bal, box.request("BYE", "sip:x@no-such-host-"+id+".example.com", id, "a", "b", 1, ""))
		}
		start := time.Now()
		caller.send(l.bal, caller.request("INVITE", "sip:svc@"+l.bal.String(), fmt.Sprintf("dns-call-%d", i), "c", "", 1, ""))
		if caller.expect(3*time.Second, "SIP/2.0 100") == "" {
			t.Fatalf("call %d: no 100 Trying within 3 s", i)
		}
		delays = append(delays, time.Since(start))
		caller.drain(100 * time.Millisecond)
	}
	sortDurations(delays)
	t.Logf("100 Trying after %v (sorted)", delays)
	if med := delays[len(delays)/2]; med > 10*time.Millisecond {
		t.Errorf("median delay of the 100 Trying %v, want < 10 ms", med)
	}
	if got := box.expect(time.Second, "SIP/2.0 404"); got == "" {
		t.Error("a request naming a host got no 404")
	}
}

func sortDurations(d []time.Duration) {
	for i := 1; i < len(d); i++ {
		for j := i; j > 0 && d[j] < d[j-1]; j-- {
			d[j], d[j-1] = d[j-1], d[j]
		}
	}
}

// TestCapsUnderSpoofedFlood: 10,000 distinct sources (127.1.x.y) send
// a new INVITE each, answered 200 by the Core and never ACKed nor ended:
// the dialog table stops at its cap's untrusted share (sip.caps.dialogs
// 2,000 here: 1,800), the rest get 503 with Retry-After, a call from the
// box itself (trusted: the reserve) still goes through, and RSS stays
// under 300 MB.
func TestCapsUnderSpoofedFlood(t *testing.T) {
	testenv.Short(t, "10,000 INVITEs through the daemon")
	l := startEdgeLab(t, "  caps: {dialogs: 2000, transactions: 3000, branches: 3000}\n", "")
	got503 := 0
	for i := 0; i < 10000; i++ {
		p := newPeerNoCleanup(t, fmt.Sprintf("127.1.%d.%d", i/250, i%250+1))
		p.send(l.bal, p.request("INVITE", "sip:svc@"+l.bal.String(), "flood-"+strconv.Itoa(i), "f", "", 1, ""))
		if i%500 == 499 {
			// Pace the flood (2,000 per second or less) and look at an
			// answer now and then.
			if m := p.expect(time.Second, "SIP/2.0 503"); m != "" && strings.Contains(m, "Retry-After:") {
				got503++
			}
		}
		p.conn.Close()
	}
	st := l.stats()
	n := l.dialogs()
	t.Logf("dialogs %d, at_cap_dialogs %d, at_cap_transactions %d, sampled 503s %d", n, st["at_cap_dialogs"], st["at_cap_transactions"], got503)
	if n > 1800 || n < 1000 {
		t.Errorf("%d dialogs after 10,000 spoofed INVITEs, want the untrusted share of the cap (1,800) at most, and filled", n)
	}
	if st["at_cap_dialogs"]+st["at_cap_transactions"] == 0 || got503 == 0 {
		t.Error("no 503 with Retry-After at the cap")
	}
	box := newPeer(t, "127.0.0.1")
	box.send(l.bal, box.request("INVITE", "sip:svc@"+l.bal.String(), "trusted-at-cap", "b", "", 1, ""))
	if box.expect(3*time.Second, "SIP/2.0 200") == "" {
		t.Error("a trusted call at the cap did not go through (reserve)")
	}
	if rss := l.d.RSSKB(); rss > 300*1024 {
		t.Errorf("RSS %d kB > 300 MB", rss)
	} else {
		t.Logf("RSS %d kB", rss)
	}
}

// newPeerNoCleanup is newPeer for a socket the test closes itself (ten
// thousand cleanups would be kept otherwise).
func newPeerNoCleanup(t *testing.T, ip string) *peer {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	return &peer{t: t, conn: c, addr: c.LocalAddr().(*net.UDPAddr).AddrPort()}
}
