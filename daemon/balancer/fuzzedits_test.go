package balancer

import (
	"context"
	"fmt"
	"github.com/sipedge/sipedge/daemon/balancer/request"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sipedge/sipedge/hal/testenv"
)

// FuzzForwardEdits: a new call's INVITE with Max-Forwards written as mf
// and the Request-URI user user goes through the raw path (as is) and
// the full path (the same with a folded header line, which the raw scan
// leaves to sipgo). Either way: a value that is 1*DIGIT between SP/HTAB
// is forwarded to the Core with exactly that value minus one (483 at
// 0), our Via added exactly once on top, the Request-URI unchanged;
// anything else is a 400 and nothing is forwarded. The seeds hold the
// vertical tab and no-break space cases the raw path once got wrong
// ("Max-Forwards:\v5" forwarded as 45).
func FuzzForwardEdits(f *testing.F) {
	for _, mf := range []string{" 70", "1", " 0", "\v5", "\u00a05", "5\v", " 5 ", "\t7", "255", " 00070", "", "5\u00a0", " \v 9", "+5", "-1"} {
		f.Add(mf, "100")
	}
	f.Add(" 70", "a.b-c+1")
	core, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		f.Fatal(err)
	}
	defer core.Close()
	caller, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		f.Fatal(err)
	}
	defer caller.Close()
	b, err := New(Options{Listen: []string{fmt.Sprintf("udp:127.0.0.1:%d", testenv.FreePort(f))}, Cores: []CoreConfig{{Name: "c1", Address: core.LocalAddr().String()}}})
	if err != nil {
		f.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		f.Fatal(err)
	}
	defer b.Close()
	for _, c := range b.pool.list() { // no wait for a probe: the Core is up
		c.mu.Lock()
		c.up = true
		c.recompute()
		c.mu.Unlock()
	}
	lis := b.listeners[0]
	src := caller.LocalAddr().(*net.UDPAddr).AddrPort()
	var seq atomic.Int64
	f.Fuzz(func(t *testing.T, mf, user string) {
		if strings.ContainsAny(mf, "\r\n") || user == "" || strings.Trim(user, "abcdefghijklmnopqrstuvwxyz0123456789.-+") != "" {
			t.Skip()
		}
		for _, full := range []bool{false, true} {
			n := seq.Add(1)
			ruri := "sip:" + user + "@" + lis.addr.String()
			extra := ""
			if full {
				extra = "Subject: folded\r\n line\r\n"
			}
			msg := fmt.Sprintf("INVITE %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKfe%dx\r\nMax-Forwards:%s\r\n"+
				"From: <sip:a@127.0.0.1>;tag=f%d\r\nTo: <sip:%s@127.0.0.1>\r\nCall-ID: fe-%d\r\nCSeq: 1 INVITE\r\n%sContent-Length: 0\r\n\r\n",
				ruri, src, n, mf, n, user, n, extra)
			b.handle(inbound{data: []byte(msg), src: src, lis: lis, trusted: true})
			id := fmt.Sprintf("Call-ID: fe-%d\r\n", n)
			fwd := readWithin(core, 50*time.Millisecond, "INVITE ", id)
			ans := readWithin(caller, 50*time.Millisecond, "SIP/2.0 4", fmt.Sprintf("z9hG4bKfe%dx", n)) // a 400 for a bad parse has no Call-ID
			v, _, _, digits := request.MaxForwardsValue([]byte("Max-Forwards:"+mf), len("Max-Forwards"))
			switch {
			case !digits:
				if fwd != "" || !strings.HasPrefix(ans, "SIP/2.0 400") {
					t.Fatalf("full=%v Max-Forwards %q: forwarded %q, answer %.30q; want 400 and nothing forwarded", full, mf, fwd, ans)
				}
			case v == 0:
				if fwd != "" || !strings.HasPrefix(ans, "SIP/2.0 483") {
					t.Fatalf("full=%v Max-Forwards %q: forwarded %q, answer %.30q; want 483", full, mf, fwd, ans)
				}
			default:
				checkForwarded(t, full, mf, fwd, ruri, v, lis)
			}
		}
	})
}

// checkForwarded checks the forwarded INVITE: Max-Forwards v-1, one Via
// of ours on top of the caller's, the Request-URI as received.
func checkForwarded(t *testing.T, full bool, mf, fwd, ruri string, v int, lis *listener) {
	t.Helper()
	if fwd == "" {
		t.Fatalf("full=%v Max-Forwards %q: not forwarded", full, mf)
	}
	head, _, _ := strings.Cut(fwd, "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	if lines[0] != "INVITE "+ruri+" SIP/2.0" {
		t.Errorf("full=%v: start line %q, want the Request-URI %q unchanged", full, lines[0], ruri)
	}
	var vias []string
	gotMF := -1
	for _, l := range lines[1:] {
		name, val, _ := strings.Cut(l, ":")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "via", "v":
			for _, one := range strings.Split(val, ",") {
				vias = append(vias, strings.TrimSpace(one))
			}
		case "max-forwards":
			if gotMF >= 0 {
				t.Errorf("full=%v: two Max-Forwards", full)
			}
			n, err := strconv.Atoi(strings.TrimSpace(val))
			if err != nil {
				t.Errorf("full=%v Max-Forwards %q forwarded as %q", full, mf, val)
			}
			gotMF = n
		}
	}
	if gotMF != v-1 {
		t.Errorf("full=%v Max-Forwards %q (%d) forwarded as %d, want %d", full, mf, v, gotMF, v-1)
	}
	ours, side := 0, coreSideOf(lis).addr.String()
	for _, via := range vias {
		if strings.Contains(via, side) {
			ours++
		}
	}
	if len(vias) != 2 || ours != 1 || !strings.Contains(vias[0], side) {
		t.Errorf("full=%v: Vias %q, want ours once on top of the caller's", full, vias)
	}
}

// readWithin reads datagrams from c for up to d and returns the first
// starting with prefix and holding id ("" when none came).
func readWithin(c *net.UDPConn, d time.Duration, prefix, id string) string {
	buf := make([]byte, 65536)
	c.SetReadDeadline(time.Now().Add(d))
	for {
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return ""
		}
		if s := string(buf[:n]); strings.HasPrefix(s, prefix) && strings.Contains(s, id) {
			return s
		}
	}
}
