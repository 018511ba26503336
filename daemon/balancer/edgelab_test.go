package balancer

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/internal/daemontest"
	"github.com/sipedge/sipedge/hal/testenv"
)

// The edge lab: the real binary on 127.0.0.1 with security.trusted
// naming only a documentation network, so that every other loopback
// address (127.0.0.2 and up: the kernel routes all of 127/8 to lo) is a
// stranger; one Core played by the test (uas) on 127.0.0.4; callers,
// attackers and victims as UDP sockets of the test on addresses of
// their own.

// uas is a Core: it answers OPTIONS, INVITE (200 with a To tag and a
// Contact, its Record-Route copied) and every other request 200,
// unless told to stay silent on INVITE or BYE. It records the requests
// it gets (OPTIONS aside).
type uas struct {
	conn    *net.UDPConn
	addr    netip.AddrPort
	silent  atomic.Uint32 // silentInvite | silentBye
	got     chan string
	contact atomic.Pointer[string] // the Contact URI of its answers (nil: sip:core@its address)
}

const (
	silentInvite = 1 << iota
	silentBye
)

func startUAS(t *testing.T, ip string) *uas {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadBuffer(4 << 20)
	u := &uas{conn: c, addr: c.LocalAddr().(*net.UDPAddr).AddrPort(), got: make(chan string, 4096)}
	t.Cleanup(func() { c.Close() })
	go u.loop()
	return u
}

func (u *uas) loop() {
	buf := make([]byte, 65536)
	for {
		n, src, err := u.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		msg := string(buf[:n])
		if strings.HasPrefix(msg, "SIP/") {
			continue
		}
		method, _, _ := strings.Cut(msg, " ")
		if method != "OPTIONS" {
			select {
			case u.got <- msg:
			default:
			}
		}
		s := u.silent.Load()
		if method == "ACK" || method == "INVITE" && s&silentInvite != 0 || method == "BYE" && s&silentBye != 0 {
			continue
		}
		contact := "sip:core@" + u.addr.String()
		if c := u.contact.Load(); c != nil {
			contact = *c
		}
		u.conn.WriteToUDPAddrPort([]byte(uasReply(msg, 200, "OK", "uas-tag", "Contact: <"+contact+">\r\n")), src)
	}
}

// next returns the next request the Core got matching method ("" when
// none came within d).
func (u *uas) next(d time.Duration, method string) string {
	end := time.After(d)
	for {
		select {
		case m := <-u.got:
			if strings.HasPrefix(m, method+" ") {
				return m
			}
		case <-end:
			return ""
		}
	}
}

// uasReply answers req: its Via, Record-Route, From, Call-ID and CSeq
// lines, its To with tag added when it has none, and extra.
func uasReply(req string, code int, reason, tag, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", code, reason)
	head, _, _ := strings.Cut(req, "\r\n\r\n")
	for _, l := range strings.Split(head, "\r\n")[1:] {
		name, _, _ := strings.Cut(l, ":")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "via", "v", "record-route", "from", "f", "call-id", "i", "cseq":
			b.WriteString(l + "\r\n")
		case "to", "t":
			if !strings.Contains(l, "tag=") {
				l += ";tag=" + tag
			}
			b.WriteString(l + "\r\n")
		}
	}
	b.WriteString(extra + "Content-Length: 0\r\n\r\n")
	return b.String()
}

// peer is a UDP endpoint of the test: a caller, an attacker, a victim.
type peer struct {
	t    *testing.T
	conn *net.UDPConn
	addr netip.AddrPort
	in   atomic.Int64 // bytes read by expect/drain
	fin  atomic.Int64 // responses other than 100 read by expect/drain
}

func newPeer(t *testing.T, ip string) *peer {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &peer{t: t, conn: c, addr: c.LocalAddr().(*net.UDPAddr).AddrPort()}
}

func (p *peer) send(dst netip.AddrPort, msg string) {
	p.t.Helper()
	if _, err := p.conn.WriteToUDPAddrPort([]byte(msg), dst); err != nil {
		p.t.Fatal(err)
	}
}

// expect reads until a message starting with prefix comes ("" after d).
func (p *peer) expect(d time.Duration, prefix string) string {
	buf := make([]byte, 65536)
	end := time.Now().Add(d)
	for {
		p.conn.SetReadDeadline(end)
		n, _, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return ""
		}
		p.in.Add(int64(n))
		if bytes.HasPrefix(buf[:n], []byte("SIP/2.0 ")) && !bytes.HasPrefix(buf[:n], []byte("SIP/2.0 100")) {
			p.fin.Add(1)
		}
		if m := string(buf[:n]); strings.HasPrefix(m, prefix) {
			return m
		}
	}
}

// drain reads everything that comes within d and returns the bytes.
func (p *peer) drain(d time.Duration) int {
	before := p.in.Load()
	p.expect(d, "\x00never")
	return int(p.in.Load() - before)
}

var requestSeq atomic.Int64

// testBranch numbers the test's requests: a new branch for each, but a
// CANCEL's is that of the request before it (its INVITE's).
func testBranch(method string) int64 {
	if method == "CANCEL" {
		return requestSeq.Load()
	}
	return requestSeq.Add(1)
}

// request renders a request from p: method, Request-URI, Call-ID, the
// caller's tag, the To tag ("" none), CSeq and extra header lines.
func (p *peer) request(method, ruri, callID, fromTag, toTag string, cseq int, extra string) string {
	to := "To: <sip:svc@127.0.0.1>"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	return fmt.Sprintf("%s %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s-%d-%s-%d;rport\r\nMax-Forwards: 70\r\n"+
		"From: <sip:caller@%s>;tag=%s\r\n%s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nContact: <sip:caller@%s>\r\n%sContent-Length: 0\r\n\r\n",
		method, ruri, p.addr, strings.ToLower(method), cseq, callID, testBranch(method), p.addr.Addr(), fromTag, to, callID, cseq, method, p.addr, extra)
}

// edgeLab is the daemon under test with its Core.
type edgeLab struct {
	t    *testing.T
	d    *daemontest.Daemon
	bal  netip.AddrPort // UDP and TCP listener
	core *uas
}

// startEdgeLab runs the daemon; extraSIP and extraSecurity are lines
// added to its sip: and security: sections (two-space indented).
func startEdgeLab(t *testing.T, extraSIP, extraSecurity string, wrap ...string) *edgeLab {
	t.Helper()
	testenv.SipedgeBinary(t)
	l := &edgeLab{t: t, core: startUAS(t, "127.0.0.4")}
	l.bal = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(testenv.FreePort(t)))
	var o Options
	if testOptions(t, &o); o.FullPath {
		extraSIP = "  raw_paths: false\n" + extraSIP
	}
	extraSIP = fmt.Sprintf("  core_port: %d\n", o.CorePort) + extraSIP
	d := daemontest.New(t)
	d.WriteConfig(fmt.Sprintf(`node: {name: edge-test, profile: single, data_dir: %q}
log: {level: info, format: text}
web: {listen: ""}
sip:
  listen: ["udp:%s", "tcp:%s"]
  probe: {interval: 500ms, timeout: 400ms, down_after: 3, up_after: 1}
  retry: {attempt_timeout: 1s, max_tries: 1}
  cores:
    - {name: core1, address: %q}
%ssecurity:
  trusted: [198.51.100.0/24]
  flood: {requests: 0}
%s`, d.DataDir(), l.bal, l.bal, l.core.addr.String(), extraSIP, extraSecurity))
	l.d = d.Start(wrap...)
	daemontest.WaitFor(t, 10*time.Second, "core1 active", func() bool {
		var st ctlCores
		l.d.CtlJSON(&st, "cores")
		return len(st.Cores) == 1 && st.Cores[0].State == StateActive
	})
	return l
}

func (l *edgeLab) stats() map[string]uint64 {
	var st ctlCores
	l.d.CtlJSON(&st, "cores")
	return st.Stats
}

func (l *edgeLab) dialogs() int {
	var st ctlCores
	l.d.CtlJSON(&st, "cores")
	return st.Dialogs
}

// call sets up a call from caller through the balancer: INVITE, 200,
// ACK; it returns the 200 and the To tag.
func (l *edgeLab) call(caller *peer, callID string) (ok200, toTag string) {
	return l.callTo(caller, callID, "sip:core@"+l.core.addr.String())
}

// callTo is call with the ACK sent to target (the Core's Contact).
func (l *edgeLab) callTo(caller *peer, callID, target string) (ok200, toTag string) {
	l.t.Helper()
	caller.send(l.bal, caller.request("INVITE", "sip:svc@"+l.bal.String(), callID, "ct-"+callID, "", 1, ""))
	ok200 = caller.expect(5*time.Second, "SIP/2.0 200")
	if ok200 == "" {
		l.t.Fatalf("call %s: no 200", callID)
	}
	_, rest, _ := strings.Cut(ok200, "\r\nTo:")
	line, _, _ := strings.Cut(rest, "\r\n")
	_, toTag, _ = strings.Cut(line, "tag=")
	caller.send(l.bal, caller.request("ACK", target, callID, "ct-"+callID, toTag, 1,
		"Route: <sip:"+l.bal.String()+";lr>\r\n"))
	if l.core.next(3*time.Second, "ACK") == "" {
		l.t.Fatalf("call %s: the ACK did not reach the Core", callID)
	}
	return ok200, toTag
}
