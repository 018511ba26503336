package conformance

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sipedge/sipedge/daemon/internal/daemontest"
	"github.com/sipedge/sipedge/hal/testenv"
)

// The lab: one network namespace of its own (name prefix c16cf), so that
// the test can listen on port 5060 of the callers' addresses, where RFC
// 3261 18.2.2 sends responses (the received address and the sent-by
// port, 5060 when absent). In it:
//
//   - sipedge listening on udp:127.0.0.1:42060 and udp:[::1]:42060, with
//     security.trusted naming only 198.51.100.0/24: 127.0.0.1 and ::1 are
//     the box itself (trusted), 127.0.0.2 and 2001:db8:c16::2 strangers;
//   - two Cores (127.0.0.4:42071, 127.0.0.5:42072): UDP responders of the
//     test that record what they get and answer 200;
//   - next hops that are not Cores, named by the messages themselves
//     (127.0.0.1:5080 in mpart01's Route, [2001:db8::10]:5060 in a BYE's
//     Request-URI), recording and answering the same way;
//   - callers: per source address a sending socket on an ephemeral port
//     and listeners on the sent-by ports the messages name.

const (
	labPort   = 42060
	core1Addr = "127.0.0.4:42071"
	core2Addr = "127.0.0.5:42072"
)

// sources: the trusted and untrusted caller address per family.
var (
	trusted4   = netip.MustParseAddr("127.0.0.1")
	untrusted4 = netip.MustParseAddr("127.0.0.2")
	trusted6   = netip.MustParseAddr("::1")
	untrusted6 = netip.MustParseAddr("2001:db8:c16::2")
	// elsewhere6 is a next hop that is not a Core (a BYE's Request-URI).
	elsewhere6 = netip.MustParseAddr("2001:db8::10")
)

// replyPorts are the sent-by ports the fixtures name (5060 when absent).
var replyPorts = []uint16{5060, 5050, 6050, 19823}

type lab struct {
	t      *testing.T
	ns     string
	d      *daemontest.Daemon
	bal4   netip.AddrPort
	bal6   netip.AddrPort
	cores  []*responder
	hops   []*responder
	caller map[netip.Addr]*caller
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
}

// newNetns creates a namespace with lo up and the extra addresses on lo;
// it is deleted when the test ends.
func newNetns(t *testing.T, addrs ...string) string {
	t.Helper()
	testenv.MustHaveNetns(t)
	ns := fmt.Sprintf("c16cf%d%03d", os.Getpid()%100000, time.Now().UnixNano()%1000)
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	for _, a := range addrs {
		run(t, "ip", "-n", ns, "addr", "add", a, "dev", "lo", "nodad")
	}
	return ns
}

// inNetns runs fn on a thread switched into namespace ns; sockets fn
// creates stay in ns.
func inNetns(ns string, fn func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := os.Open("/var/run/netns/" + ns)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns %s: %w", ns, err)
	}
	ferr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns back: %w (thread left locked)", err) // the thread dies with the goroutine
	}
	runtime.UnlockOSThread()
	return ferr
}

// listenUDP binds addr inside ns ("" for the test's own namespace).
func listenUDP(t *testing.T, ns string, addr netip.AddrPort) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	listen := func() (err error) {
		c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		return err
	}
	var err error
	if ns == "" {
		err = listen()
	} else {
		err = inNetns(ns, listen)
	}
	if err != nil {
		t.Fatalf("listen %v in %q: %v", addr, ns, err)
	}
	c.SetReadBuffer(1 << 20)
	t.Cleanup(func() { c.Close() })
	return c
}

// datagram is one message a socket of the test received.
type datagram struct {
	at   netip.AddrPort // the socket that got it
	from netip.AddrPort
	data []byte
}

// responder is a Core or another next hop: it records every request
// (the balancer's OPTIONS probes included: the tests pick theirs by
// Call-ID) and answers each (ACK aside): 486 to an INVITE, so that no
// dialog outlives its row (several RFC 5118 messages share a Call-ID),
// 200 to anything else.
type responder struct {
	name string
	addr netip.AddrPort
	conn *net.UDPConn
	got  chan datagram
}

func startResponder(t *testing.T, ns, name string, addr netip.AddrPort) *responder {
	t.Helper()
	r := &responder{name: name, addr: addr, conn: listenUDP(t, ns, addr), got: make(chan datagram, 256)}
	go r.loop()
	return r
}

func (r *responder) loop() {
	buf := make([]byte, 65536)
	for {
		n, src, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		msg := append([]byte(nil), buf[:n]...)
		if bytes.HasPrefix(msg, []byte("SIP/")) {
			continue
		}
		method, _, _ := bytes.Cut(msg, []byte(" "))
		select {
		case r.got <- datagram{at: r.addr, from: src, data: msg}:
		default:
		}
		switch string(method) {
		case "ACK":
		case "INVITE":
			r.conn.WriteToUDPAddrPort(replyTo(msg, 486, "Busy Here", r.addr), src)
		default:
			r.conn.WriteToUDPAddrPort(replyTo(msg, 200, "OK", r.addr), src)
		}
	}
}

// replyTo answers req: its Via, Record-Route, From, Call-ID and CSeq
// lines as received (folded lines kept), a To tag added, and a Contact.
func replyTo(req []byte, code int, reason string, self netip.AddrPort) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", code, reason)
	head, _, _ := bytes.Cut(req, []byte("\r\n\r\n"))
	keep := false
	for _, l := range strings.Split(string(head), "\r\n")[1:] {
		if l != "" && (l[0] == ' ' || l[0] == '\t') {
			if keep {
				b.WriteString(l + "\r\n")
			}
			continue
		}
		name, _, _ := strings.Cut(l, ":")
		keep = true
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "via", "v", "record-route", "from", "f", "call-id", "i", "cseq":
			b.WriteString(l + "\r\n")
		case "to", "t":
			if !strings.Contains(l, "tag") {
				l += ";tag=core-tag"
			}
			b.WriteString(l + "\r\n")
		default:
			keep = false
		}
	}
	fmt.Fprintf(&b, "Contact: <sip:core@%s>\r\nContent-Length: 0\r\n\r\n", self)
	return b.Bytes()
}

// caller is one source address: a sending socket on an ephemeral port
// and listeners on replyPorts; everything they get goes to in.
type caller struct {
	src  *net.UDPConn
	addr netip.AddrPort // the sending socket
	in   chan datagram
}

func startCaller(t *testing.T, ns string, ip netip.Addr) *caller {
	t.Helper()
	c := &caller{in: make(chan datagram, 256)}
	c.src = listenUDP(t, ns, netip.AddrPortFrom(ip, 0))
	c.addr = netip.AddrPortFrom(ip, c.src.LocalAddr().(*net.UDPAddr).AddrPort().Port())
	go c.read(c.src, c.addr)
	for _, p := range replyPorts {
		a := netip.AddrPortFrom(ip, p)
		go c.read(listenUDP(t, ns, a), a)
	}
	return c
}

func (c *caller) read(conn *net.UDPConn, at netip.AddrPort) {
	buf := make([]byte, 65536)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		select {
		case c.in <- datagram{at: at, from: from, data: append([]byte(nil), buf[:n]...)}:
		default:
		}
	}
}

// startLab builds the namespace, its peers and the daemon.
func startLab(t *testing.T) *lab {
	t.Helper()
	testenv.SipedgeBinary(t)
	ns := newNetns(t, untrusted6.String()+"/128", elsewhere6.String()+"/128")
	l := &lab{t: t, ns: ns, caller: map[netip.Addr]*caller{},
		bal4: netip.AddrPortFrom(trusted4, labPort), bal6: netip.AddrPortFrom(trusted6, labPort)}
	for i, a := range []string{core1Addr, core2Addr} {
		l.cores = append(l.cores, startResponder(t, ns, fmt.Sprintf("core%d", i+1), netip.MustParseAddrPort(a)))
	}
	for _, a := range []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:5080"), netip.AddrPortFrom(elsewhere6, 5060)} {
		l.hops = append(l.hops, startResponder(t, ns, "hop "+a.String(), a))
	}
	for _, ip := range []netip.Addr{trusted4, untrusted4, trusted6, untrusted6} {
		l.caller[ip] = startCaller(t, ns, ip)
	}
	d := daemontest.New(t)
	d.WriteConfig(fmt.Sprintf(`node: {name: conformance, profile: single, data_dir: %q}
log: {level: %s, format: text}
web: {listen: ""}
sip:
  listen: ["udp:%s", "udp:%s"]
  algorithm: round-robin
  probe: {interval: 500ms, timeout: 400ms, down_after: 3, up_after: 1}
  retry: {attempt_timeout: 1s, max_tries: 1}
  cores:
    - {name: core1, address: %q}
    - {name: core2, address: %q}
security:
  trusted: [198.51.100.0/24]
  flood: {requests: 0}
`, d.DataDir(), logLevel(), l.bal4, l.bal6, core1Addr, core2Addr))
	l.d = d.Start("ip", "netns", "exec", ns)
	daemontest.WaitFor(t, 10*time.Second, "both Cores active", func() bool {
		var st struct {
			Cores []struct{ State string } `json:"cores"`
		}
		l.d.CtlJSON(&st, "cores")
		n := 0
		for _, c := range st.Cores {
			if c.State == "active" {
				n++
			}
		}
		return n == 2
	})
	return l
}

// logLevel is the daemon's: debug with SIPEDGE_TEST_LOG=1 (its log is
// shown when a test fails).
func logLevel() string {
	if os.Getenv("SIPEDGE_TEST_LOG") == "1" {
		return "debug"
	}
	return "info"
}
