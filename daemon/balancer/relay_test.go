package balancer

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// The attacks of the edge review, each through the real binary with
// security.trusted naming only 198.51.100.0/24: the attacker is
// 127.0.0.2, the address it wants reached (the "victim": a PSTN gateway
// trusting the balancer, an internal host) 127.0.0.3. On the release
// before the routing policy every one of these reached the victim.

// victim listens on 127.0.0.3 over UDP and TCP and reports whatever
// reaches it.
type victim struct {
	udp *peer
	tcp *net.TCPListener
}

func newVictim(t *testing.T) *victim {
	v := &victim{udp: newPeer(t, "127.0.0.3")}
	l, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	v.tcp = l
	return v
}

func (v *victim) tcpAddr() netip.AddrPort { return v.tcp.Addr().(*net.TCPAddr).AddrPort() }

// reached reports what reached the victim within d: bytes over UDP and
// whether a TCP connection came.
func (v *victim) reached(d time.Duration) (udpBytes int, tcpConn bool) {
	v.tcp.SetDeadline(time.Now().Add(d))
	done := make(chan bool, 1)
	go func() {
		c, err := v.tcp.Accept()
		if err == nil {
			c.Close()
		}
		done <- err == nil
	}()
	udpBytes = v.udp.drain(d)
	return udpBytes, <-done
}

func TestRelayClosedToStrangers(t *testing.T) {
	l := startEdgeLab(t, "", "")
	att, vic := newPeer(t, "127.0.0.2"), newVictim(t)
	sipVictim := "sip:victim@" + vic.udp.addr.String()
	tests := []struct {
		name, msg, want string // want: the answer's status line prefix ("" none)
	}{
		{"BYE with a To tag to an address of its choosing, no dialog",
			att.request("BYE", sipVictim, "bye-noDialog", "a1", "x1", 1, ""), "SIP/2.0 481"},
		{"INVITE with a Route to the victim",
			att.request("INVITE", sipVictim, "inv-route", "a2", "", 1, "Route: <sip:"+vic.udp.addr.String()+";lr>\r\n"), "SIP/2.0 403"},
		{"INVITE with our Route, then the victim's",
			att.request("INVITE", sipVictim, "inv-route2", "a3", "", 1, "Route: <sip:"+l.bal.String()+";lr>,<sip:"+vic.udp.addr.String()+";lr>\r\n"), "SIP/2.0 403"},
		{"INVITE with a Route to the victim over TCP",
			att.request("INVITE", sipVictim, "inv-tcp", "a4", "", 1, "Route: <sip:"+vic.tcpAddr().String()+";transport=tcp;lr>\r\n"), "SIP/2.0 403"},
		{"re-INVITE of no dialog",
			att.request("INVITE", sipVictim, "reinv", "a5", "x5", 2, ""), "SIP/2.0 481"},
		{"MESSAGE in no dialog via a Route",
			att.request("MESSAGE", sipVictim, "msg-route", "a6", "x6", 1, "Route: <sip:"+vic.udp.addr.String()+";lr>\r\n"), "SIP/2.0 481"},
		{"ACK with a To tag to the victim",
			att.request("ACK", sipVictim, "ack-victim", "a7", "x7", 1, ""), ""},
		{"CANCEL of no transaction",
			att.request("CANCEL", sipVictim, "cancel-victim", "a8", "", 1, ""), "SIP/2.0 481"},
		{"a 2xx whose second Via is the victim",
			"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP " + l.bal.String() + ";branch=z9hG4bKsbdeadbeef.1\r\nVia: SIP/2.0/UDP " + vic.udp.addr.String() +
				";branch=z9hG4bKv\r\nFrom: <sip:a@x>;tag=a9\r\nTo: <sip:b@y>;tag=b9\r\nCall-ID: resp-victim\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", ""},
		{"the same toward the victim over TCP",
			"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP " + l.bal.String() + ";branch=z9hG4bKsbdeadbeef.2\r\nVia: SIP/2.0/TCP " + vic.tcpAddr().String() +
				";branch=z9hG4bKv\r\nFrom: <sip:a@x>;tag=a10\r\nTo: <sip:b@y>;tag=b10\r\nCall-ID: resp-victim-tcp\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			att.send(l.bal, tt.msg)
			if tt.want != "" {
				if got := att.expect(3*time.Second, "SIP/2.0 "); !strings.HasPrefix(got, tt.want) {
					t.Errorf("answer %.40q, want %s", got, tt.want)
				}
			}
			if n, tcp := vic.reached(500 * time.Millisecond); n != 0 || tcp {
				t.Errorf("the victim was reached: %d bytes over UDP, TCP connection %v", n, tcp)
			}
		})
	}
	// A new request toward the Core pool is a stranger's right: its
	// Request-URI names the victim, the Core gets it.
	att.send(l.bal, att.request("MESSAGE", sipVictim, "msg-pool", "a11", "", 1, ""))
	if l.core.next(3*time.Second, "MESSAGE") == "" {
		t.Error("an out-of-dialog MESSAGE did not reach the Core pool")
	}
	st := l.stats()
	for _, r := range refusedReasons {
		t.Logf("relay_refused_%s = %d", r, st["relay_refused_"+r])
	}
	if st["relay_refused_route"] < 3 || st["relay_refused_unknown_dialog"] < 3 || st["relay_refused_ack"] < 1 || st["relay_refused_response"] < 2 {
		t.Errorf("refusals not counted by reason: %v", st)
	}
}

// TestRelayDialogsOfStrangers: a caller outside trusted sets up a call
// and ends it; an attacker who guessed its Call-ID cannot end it, nor
// can the caller send its in-dialog requests elsewhere than the
// dialog's next hop; the Core's BYE reaches the caller.
func TestRelayDialogsOfStrangers(t *testing.T) {
	l := startEdgeLab(t, "", "")
	caller, att, vic := newPeer(t, "127.0.0.5"), newPeer(t, "127.0.0.2"), newVictim(t)
	route := "Route: <sip:" + l.bal.String() + ";lr>\r\n"
	toCore := "sip:core@" + l.core.addr.String()

	_, tag := l.call(caller, "call-1")
	if n := l.dialogs(); n != 1 {
		t.Fatalf("%d dialogs after the call is up, want 1", n)
	}
	for _, tt := range []struct{ name, msg, want string }{
		{"BYE with the Call-ID guessed, not the tags", att.request("BYE", toCore, "call-1", "guess", "guess", 2, route), "SIP/2.0 481"},
		{"BYE with the caller's tag, not the callee's", att.request("BYE", toCore, "call-1", "ct-call-1", "guess", 2, route), "SIP/2.0 481"},
		{"BYE as if from the callee's side", att.request("BYE", "sip:caller@"+caller.addr.String(), "call-1", tag, "ct-call-1", 2, route), "SIP/2.0 403"},
		{"BYE of the dialog toward the victim", caller.request("BYE", "sip:v@"+vic.udp.addr.String(), "call-1", "ct-call-1", tag, 2, route), "SIP/2.0 403"},
		{"INFO of the dialog routed to the victim", caller.request("INFO", toCore, "call-1", "ct-call-1", tag, 2, route+"Route: <sip:"+vic.udp.addr.String()+";lr>\r\n"), "SIP/2.0 403"},
	} {
		src := att
		if strings.Contains(tt.name, "of the dialog") {
			src = caller
		}
		src.send(l.bal, tt.msg)
		if got := src.expect(3*time.Second, "SIP/2.0 "); !strings.HasPrefix(got, tt.want) {
			t.Errorf("%s: answer %.40q, want %s", tt.name, got, tt.want)
		}
		if n, tcp := vic.reached(300 * time.Millisecond); n != 0 || tcp {
			t.Errorf("%s: the victim was reached", tt.name)
		}
		if n := l.dialogs(); n != 1 {
			t.Errorf("%s: %d dialogs, want the call still up", tt.name, n)
		}
	}
	// The caller's own re-INVITE and BYE go through, to the Core.
	caller.send(l.bal, caller.request("INVITE", toCore, "call-1", "ct-call-1", tag, 3, route))
	if got := caller.expect(3*time.Second, "SIP/2.0 200"); got == "" {
		t.Error("the caller's re-INVITE got no 200")
	}
	caller.send(l.bal, caller.request("ACK", toCore, "call-1", "ct-call-1", tag, 3, route))
	caller.send(l.bal, caller.request("BYE", toCore, "call-1", "ct-call-1", tag, 4, route))
	if got := caller.expect(3*time.Second, "SIP/2.0 200"); got == "" || l.core.next(time.Second, "BYE") == "" {
		t.Errorf("the caller's BYE: answer %.40q", got)
	}
	daemontestWait(t, "the dialog ended", func() bool { return l.dialogs() == 0 })

	// A second call, ended by the Core: its BYE (a trusted source,
	// loose routing) reaches the caller behind its Contact.
	_, tag = l.call(caller, "call-2")
	coreBye := fmt.Sprintf("BYE sip:caller@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKcorebye\r\nMax-Forwards: 70\r\n"+
		"Route: <sip:%s;lr>\r\nFrom: <sip:svc@127.0.0.1>;tag=%s\r\nTo: <sip:caller@127.0.0.5>;tag=ct-call-2\r\nCall-ID: call-2\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
		caller.addr, l.core.addr, l.bal, tag)
	l.core.conn.WriteToUDPAddrPort([]byte(coreBye), l.bal)
	bye := caller.expect(3*time.Second, "BYE ")
	if bye == "" {
		t.Fatal("the Core's BYE did not reach the caller")
	}
	caller.send(l.bal, uasReply(bye, 200, "OK", "", ""))
	daemontestWait(t, "the dialog ended by the Core's BYE", func() bool { return l.dialogs() == 0 })

	// A third, whose Core names itself by a host name in its Contact:
	// nothing is looked up; the name the dialog recorded stands for its
	// Core, any other name is refused.
	named := "sip:core@core1.example.net"
	l.core.contact.Store(&named)
	_, tag = l.callTo(caller, "call-3", named)
	caller.send(l.bal, caller.request("INFO", "sip:core@elsewhere.example.net", "call-3", "ct-call-3", tag, 2, route))
	if got := caller.expect(3*time.Second, "SIP/2.0 "); !strings.HasPrefix(got, "SIP/2.0 403") {
		t.Errorf("INFO to another name: answer %.40q, want 403", got)
	}
	caller.send(l.bal, caller.request("BYE", named, "call-3", "ct-call-3", tag, 3, route))
	if got := caller.expect(3*time.Second, "SIP/2.0 "); !strings.HasPrefix(got, "SIP/2.0 200") || l.core.next(time.Second, "BYE") == "" {
		t.Errorf("BYE to the Core's name: answer %.40q, want the Core's 200", got)
	}
}

func daemontestWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("not within 5 s: %s", what)
		}
	}
}

// TestRelayOpenIsALabSetting: security.relay: open routes a stranger's
// request where it says (what a lab may want), and the daemon says
// loudly that it is unsafe: in its log and at the head of `ctl config
// show`.
func TestRelayOpenIsALabSetting(t *testing.T) {
	l := startEdgeLab(t, "", "  relay: open\n")
	att, vic := newPeer(t, "127.0.0.2"), newVictim(t)
	att.send(l.bal, att.request("BYE", "sip:victim@"+vic.udp.addr.String(), "open-1", "a", "b", 1, ""))
	if got := vic.udp.expect(3*time.Second, "BYE "); got == "" {
		t.Error("relay: open did not route the BYE where it said")
	}
	out, _, code := l.d.Ctl("config", "show")
	if code != 0 || !strings.Contains(out, "# WARNING: security.relay: open makes the balancer an open relay") {
		t.Errorf("ctl config show does not flag the open relay:\n%.300s", out)
	}
	if !strings.Contains(l.d.Log.String(), "UNSAFE CONFIGURATION: security.relay: open") {
		t.Error("no warning in the log")
	}
}
