package balancer

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sipedge/sipedge/hal/testenv"
)

// BenchmarkCallPath drives complete calls through an in-process balancer
// over loopback UDP: the benchmark is the caller (INVITE, ACK and BYE
// along the recorded route), two goroutines are the Cores (100/180/200
// with Record-Route copied, 200 to BYE), as the SIPp bench has them. One
// op is one call: 7 datagrams into the balancer, 9 out (its 100
// included). "serial" has one call at a time (wake-ups dominate its
// time); "parallel" keeps 16 callers going, so that the reader reads
// batches as under load; "untrusted" is "serial" from 127.0.0.2, a
// source outside trusted, whose ACK and BYE the routing policy checks
// against the dialog (relay.go). The harness allocates nothing per call, so
// allocs/op is the balancer's; cpu-us/call is the process's CPU time
// (the harness's sends and reads included).
//
//	go test -run '^$' -bench CallPath -benchmem ./daemon/balancer
func BenchmarkCallPath(b *testing.B) {
	var cores []CoreConfig
	for i := 0; i < 2; i++ {
		c := benchSocket(b)
		cores = append(cores, CoreConfig{Name: fmt.Sprintf("core%d", i+1), Address: c.LocalAddr().String()})
		go benchCore(c)
	}
	port := testenv.FreePort(b)
	bal, err := New(Options{
		Listen: []string{fmt.Sprintf("udp:127.0.0.1:%d", port)},
		Probe:  ProbeOptions{Interval: time.Hour, Timeout: time.Hour},
		Cores:  cores,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := bal.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { bal.Close() })
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	var seq atomic.Int64
	b.Run("serial", func(b *testing.B) {
		c := newBenchCaller(b, to)
		benchCPU(b, func() {
			for n := 0; n < b.N && c.call(int(seq.Add(1))); n++ {
			}
		})
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(8) // 16 callers on 2 CPUs
		benchCPU(b, func() {
			b.RunParallel(func(pb *testing.PB) {
				c := newBenchCaller(b, to)
				for pb.Next() && c.call(int(seq.Add(1))) {
				}
			})
		})
	})
	b.Run("untrusted", func(b *testing.B) {
		c := newBenchCaller(b, to)
		c.c.Close()
		c.c = benchSocketOn(b, net.IPv4(127, 0, 0, 2))
		c.me = c.c.LocalAddr().String()
		benchCPU(b, func() {
			for n := 0; n < b.N && c.call(int(seq.Add(1))); n++ {
			}
		})
		for i := range bal.stats.Refused {
			if n := bal.stats.Refused[i].Load(); n != 0 {
				b.Errorf("the policy refused %d messages of a stranger's calls (%s)", n, refusedReasons[i])
			}
		}
	})
}

// benchCPU runs f as the timed part and reports the process's CPU time
// per op.
func benchCPU(b *testing.B, f func()) {
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ReportAllocs()
	b.ResetTimer()
	f()
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	used := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(float64(used.Microseconds())/float64(b.N), "cpu-us/call")
}

// benchCaller is one caller socket with its reused buffers.
type benchCaller struct {
	b                               *testing.B
	c                               *net.UDPConn
	to                              netip.AddrPort
	me                              string
	ruri                            []byte
	out, in, route, contact, toLine []byte
}

func newBenchCaller(b *testing.B, to netip.AddrPort) *benchCaller {
	c := benchSocket(b)
	return &benchCaller{b: b, c: c, to: to, me: c.LocalAddr().String(), ruri: []byte("sip:svc@" + to.String()),
		out: make([]byte, 0, 2048), in: make([]byte, 65536), route: make([]byte, 0, 256),
		contact: make([]byte, 0, 128), toLine: make([]byte, 0, 256)}
}

// call makes call n: INVITE, 200, ACK and BYE along the route, 200;
// false (the benchmark failed) when one did not go through.
func (c *benchCaller) call(n int) bool {
	c.route, c.contact, c.toLine = c.route[:0], c.contact[:0], c.toLine[:0]
	c.request("INVITE", c.ruri, n, 'i', 1)
	ok := c.await()
	if ok == nil || !bytes.HasPrefix(ok, []byte("SIP/2.0 200")) {
		c.b.Errorf("call %d: INVITE not answered 200: %q", n, ok)
		return false
	}
	for line := range benchLines(ok) {
		switch name, val := benchHeader(line); name {
		case "record-route":
			c.route = append(c.route, val...) // one entry each: order kept
		case "contact":
			c.contact = append(c.contact, bytes.Trim(val, "<>")...)
		case "to":
			c.toLine = append(c.toLine, line...)
		}
	}
	if len(c.route) == 0 || len(c.contact) == 0 {
		c.b.Errorf("call %d: 200 without Record-Route or Contact:\n%s", n, ok)
		return false
	}
	c.request("ACK", c.contact, n, 'a', 1)
	c.request("BYE", c.contact, n, 'b', 2)
	if ok := c.await(); ok == nil || !bytes.HasPrefix(ok, []byte("SIP/2.0 200")) {
		c.b.Errorf("call %d: BYE not answered 200: %q", n, ok)
		return false
	}
	return true
}

// request sends the caller's request of call n (branch suffix br).
func (c *benchCaller) request(method string, ruri []byte, n int, br byte, cseq int) {
	out := append(c.out[:0], method...)
	out = append(out, ' ')
	out = append(out, ruri...)
	out = append(out, " SIP/2.0\r\nVia: SIP/2.0/UDP "...)
	out = append(out, c.me...)
	out = append(out, ";branch=z9hG4bK-bench"...)
	out = strconv.AppendInt(out, int64(n), 10)
	out = append(out, br)
	out = append(out, "\r\nFrom: caller <sip:caller@"...)
	out = append(out, c.me...)
	out = append(out, ">;tag=c"...)
	out = strconv.AppendInt(out, int64(n), 10)
	out = append(out, "\r\n"...)
	if len(c.toLine) > 0 {
		out = append(out, c.toLine...)
	} else {
		out = append(out, "To: <"...)
		out = append(out, c.ruri...)
		out = append(out, '>')
	}
	out = append(out, "\r\nCall-ID: bench-"...)
	out = strconv.AppendInt(out, int64(n), 10)
	out = append(out, "@caller\r\nCSeq: "...)
	out = strconv.AppendInt(out, int64(cseq), 10)
	out = append(out, ' ')
	out = append(out, method...)
	out = append(out, "\r\n"...)
	if method == "INVITE" {
		out = append(out, "Contact: <sip:caller@"...)
		out = append(out, c.me...)
		out = append(out, ">\r\n"...)
	}
	if len(c.route) > 0 {
		out = append(out, "Route: "...)
		out = append(out, c.route...)
		out = append(out, "\r\n"...)
	}
	out = append(out, "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"...)
	c.out = out
	if _, err := c.c.WriteToUDPAddrPort(out, c.to); err != nil {
		c.b.Error(err)
	}
}

// await reads until a final response; nil on a timeout.
func (c *benchCaller) await() []byte {
	c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		n, _, err := c.c.ReadFromUDPAddrPort(c.in)
		if err != nil {
			return nil
		}
		if n > 12 && bytes.HasPrefix(c.in, []byte("SIP/2.0 ")) && c.in[8] >= '2' {
			return c.in[:n]
		}
	}
}

func benchSocket(b *testing.B) *net.UDPConn { return benchSocketOn(b, net.IPv4(127, 0, 0, 1)) }

func benchSocketOn(b *testing.B, ip net.IP) *net.UDPConn {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// benchCore answers INVITE with 100, 180 and 200 (Record-Route copied,
// Contact, a small SDP), ACK with nothing and anything else with 200,
// until its socket closes. It allocates nothing per message.
func benchCore(c *net.UDPConn) {
	in := make([]byte, 65536)
	out := make([]byte, 0, 4096)
	contact := "Contact: <sip:" + c.LocalAddr().String() + ">\r\n"
	const sdp = "v=0\r\no=core 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
	reply := func(req []byte, src netip.AddrPort, status string, tag bool, body string) {
		out = append(out[:0], "SIP/2.0 "...)
		out = append(out, status...)
		out = append(out, "\r\n"...)
		for line := range benchLines(req) {
			switch name, _ := benchHeader(line); name {
			case "via", "from", "call-id", "cseq":
				out = append(out, line...)
				out = append(out, "\r\n"...)
			case "record-route":
				if tag {
					out = append(out, line...)
					out = append(out, "\r\n"...)
				}
			case "to":
				out = append(out, line...)
				if tag {
					out = append(out, ";tag=core"...)
				}
				out = append(out, "\r\n"...)
			}
		}
		if tag {
			out = append(out, contact...)
		}
		if body != "" {
			out = append(out, "Content-Type: application/sdp\r\n"...)
		}
		out = append(out, "Content-Length: "...)
		out = strconv.AppendInt(out, int64(len(body)), 10)
		out = append(out, "\r\n\r\n"...)
		out = append(out, body...)
		c.WriteToUDPAddrPort(out, src)
	}
	for {
		n, src, err := c.ReadFromUDPAddrPort(in)
		if err != nil {
			return
		}
		req := in[:n]
		switch {
		case bytes.HasPrefix(req, []byte("INVITE ")):
			reply(req, src, "100 Trying", false, "")
			reply(req, src, "180 Ringing", true, "")
			reply(req, src, "200 OK", true, sdp)
		case bytes.HasPrefix(req, []byte("ACK ")), bytes.HasPrefix(req, []byte("SIP/")):
		default:
			reply(req, src, "200 OK", false, "")
		}
	}
}

// benchLines yields the header lines of a message (no CRLF), up to the
// blank line.
func benchLines(p []byte) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		i := bytes.IndexByte(p, '\n')
		for i >= 0 && i+1 < len(p) {
			p = p[i+1:]
			i = bytes.IndexByte(p, '\n')
			line := p
			if i >= 0 {
				line = p[:i]
			}
			line = bytes.TrimRight(line, "\r")
			if len(line) == 0 || !yield(line) {
				return
			}
		}
	}
}

// benchHeader is a header line's lower-case name (long form) and value.
func benchHeader(line []byte) (string, []byte) {
	k := bytes.IndexByte(line, ':')
	if k < 0 {
		return "", nil
	}
	name, val := bytes.TrimSpace(line[:k]), bytes.TrimSpace(line[k+1:])
	for _, h := range [...]string{"via", "from", "to", "call-id", "cseq", "record-route", "contact"} {
		if bytes.EqualFold(name, []byte(h)) {
			return h, val
		}
	}
	return "", val
}
