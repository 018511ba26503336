// Package testenv lets tests ask for what they need from the machine
// (root, network namespaces, sipp, kamailio, qemu, chromium) in one line,
// in the manner of Go's internal/testenv.
//
// A missing requirement skips the test with a clear message, except when
// SIPEDGE_TEST_STRICT=1 (set by .ci/run), where it fails the test: in CI a
// skip would hide a broken install step.
package testenv

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// Strict reports whether missing requirements fail tests instead of
// skipping them.
func Strict() bool { return os.Getenv("SIPEDGE_TEST_STRICT") == "1" }

// missing skips or fails t for a missing requirement.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if Strict() {
		t.Fatalf("requirement missing (SIPEDGE_TEST_STRICT=1): "+format, args...)
	}
	t.Skipf("skipping: "+format, args...)
}

// Missing skips t for a requirement found missing (a pseudo-terminal, a
// device), or fails it under SIPEDGE_TEST_STRICT=1.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	missing(t, format, args...)
}

// MustHaveRoot requires uid 0.
func MustHaveRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "needs root")
	}
}

// MustHaveExec requires each named program on PATH and returns the path
// of the first.
func MustHaveExec(t testing.TB, names ...string) string {
	t.Helper()
	first := ""
	for _, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			missing(t, "needs %s on PATH (%v)", n, err)
			return ""
		}
		if first == "" {
			first = p
		}
	}
	return first
}

// MustHaveNetns requires root and a working "ip netns".
func MustHaveNetns(t testing.TB) {
	t.Helper()
	MustHaveRoot(t)
	MustHaveExec(t, "ip")
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		missing(t, "ip netns does not work: %v: %s", err, strings.TrimSpace(string(out)))
	}
}

// NewNetns makes network namespace name with its loopback up, deleted
// when the test ends, and returns the command prefix that runs a program
// in it (ip netns exec NAME).
func NewNetns(t testing.TB, name string) []string {
	t.Helper()
	MustHaveNetns(t)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("%s: lo up: %v: %s", name, err, out)
	}
	return []string{"ip", "netns", "exec", name}
}

// MustHaveIPv6Loopback requires ::1 to be usable (a container may run
// with IPv6 disabled).
func MustHaveIPv6Loopback(t testing.TB) {
	t.Helper()
	c, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		missing(t, "needs IPv6 on loopback (::1): %v", err)
		return
	}
	c.Close()
}

// MustHaveSIPp requires the sipp binary (Debian package sip-tester).
func MustHaveSIPp(t testing.TB) string { t.Helper(); return MustHaveExec(t, "sipp") }

// MustHaveKamailio requires the kamailio binary.
func MustHaveKamailio(t testing.TB) string { t.Helper(); return MustHaveExec(t, "kamailio") }

// MustHaveQEMU requires qemu-system-x86_64.
func MustHaveQEMU(t testing.TB) string { t.Helper(); return MustHaveExec(t, "qemu-system-x86_64") }

// MustHaveChromium requires a chromium binary.
func MustHaveChromium(t testing.TB) string {
	t.Helper()
	for _, n := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	missing(t, "needs chromium on PATH")
	return ""
}

// Short skips t in -short mode (never a failure: -short is a choice).
func Short(t testing.TB, why string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("skipping in -short mode: %s", why)
	}
}

// handed remembers the ports FreePort gave out in this process, so two
// peers of one test never get the same one.
var handed struct {
	sync.Mutex
	ports map[int]bool
}

// Ports are drawn from below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range), which the kernel uses for every bind to
// port 0: a port checked free there could be taken by any socket of any
// process (a Core's client socket, Kamailio's workers) before the peer it
// was meant for binds it. Below the range, only explicit binds compete.
const portFloor = 20000

// ephemeralLow returns the low end of the kernel's ephemeral port range
// (Linux's default when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		var lo, hi int
		if _, err := fmt.Sscan(string(b), &lo, &hi); err == nil {
			return lo
		}
	}
	return 32768
}

// portRange is where FreePorts draws from: below the ephemeral range,
// from portFloor, or from 1024 when the range starts lower than that
// leaves room for.
func portRange() (lo, hi int) {
	hi = ephemeralLow()
	if hi-portFloor >= 2000 {
		return portFloor, hi
	}
	return 1024, hi
}

// FreePort returns a loopback port that is free for both UDP and TCP at
// the time of the call, lies below the kernel's ephemeral range and was
// not handed out before in this process.
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePorts(t, 1)
}

// FreePorts returns the first of n consecutive ports that FreePort could
// each have returned, and marks all n handed out. SIPp's media port (-mp)
// needs such a block: it binds four ports from it (audio and video, RTP
// and RTCP) and exits if one is taken.
func FreePorts(t testing.TB, n int) int {
	t.Helper()
	lo, hi := portRange()
	span := hi - lo - n
	if span < 100 {
		t.Fatalf("no room for test ports below the kernel's ephemeral range (it starts at %d)", hi)
	}
	for i := 0; i < 200; i++ {
		base := lo + rand.IntN(span)
		if portsFree(base, n) {
			return base
		}
	}
	t.Fatalf("no block of %d free ports in %d-%d", n, lo, hi)
	return 0
}

// portsFree reports whether base..base+n-1 are unhanded and bindable for
// UDP and TCP on loopback, and if so marks them handed.
func portsFree(base, n int) bool {
	handed.Lock()
	defer handed.Unlock()
	for p := base; p < base+n; p++ {
		if handed.ports[p] || !bindable(p) {
			return false
		}
	}
	if handed.ports == nil {
		handed.ports = map[int]bool{}
	}
	for p := base; p < base+n; p++ {
		handed.ports[p] = true
	}
	return true
}

// bindable reports whether port can be bound for TCP and UDP on any
// address (so also on 127.0.0.x aliases) right now.
func bindable(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		return false
	}
	defer l.Close()
	u, err := net.ListenPacket("udp", fmt.Sprintf(":%d", port))
	if err != nil {
		return false
	}
	u.Close()
	return true
}
