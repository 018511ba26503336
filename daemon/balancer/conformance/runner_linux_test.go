package conformance

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// kind is what the balancer did with a message.
type kind int

const (
	toCore   kind = iota + 1 // forwarded to one of the Cores
	toHop                    // forwarded to the next hop the message names (not a Core)
	answered                 // answered by the balancer itself with a final response
	dropped                  // nothing: no forward, no final response
)

// outcome is a kind, with the status code when answered.
type outcome struct {
	kind kind
	code int
}

func (o outcome) String() string {
	switch o.kind {
	case toCore:
		return "routed to a Core"
	case toHop:
		return "forwarded to its next hop"
	case answered:
		return fmt.Sprintf("answered %d", o.code)
	case dropped:
		return "dropped"
	}
	return "?"
}

var (
	core    = outcome{kind: toCore}
	hop     = outcome{kind: toHop}
	drop    = outcome{kind: dropped}
	code400 = outcome{kind: answered, code: 400}
)

func answer(code int) outcome { return outcome{kind: answered, code: code} }

// observation is what one send produced.
type observation struct {
	outcome
	replyAt  []netip.AddrPort // where responses to the caller arrived
	final    []byte           // the final response the caller got, if any
	forwards []datagram       // what the Cores and next hops got
}

// txLinger is how long the balancer keeps a finished transaction (5 s)
// plus room: a message whose transaction key (method, top Via) another
// job used less than this ago would be taken as its retransmission.
const txLinger = 6500 * time.Millisecond

// window bounds the wait for an outcome: the attempt timer (1 s) and
// its 504 included, with room for a busy host.
const window = 2 * time.Second

var (
	callIDLine = regexp.MustCompile(`(?im)^(?:call-id|i)[ \t]*:[ \t]*(\S+)`)
	cseqLine   = regexp.MustCompile(`(?im)^cseq[ \t]*:[ \t]*(\d+)`)
	viaLine    = regexp.MustCompile(`(?im)^(?:via|v)[ \t]*:.*$`)
	branchRe   = regexp.MustCompile(`(?i)branch[ \t]*=[ \t]*([^;,\s]+)`)
)

// marker finds the datagrams that belong to msg: its Call-ID and CSeq
// number (several RFC 5118 messages share a Call-ID), or the top Via
// branch when it has no Call-ID (insuf).
func marker(msg []byte) func([]byte) bool {
	head, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	if m := callIDLine.FindAllSubmatch(head, -1); m != nil {
		ids := m
		seq := cseqLine.FindSubmatch(head)
		return func(d []byte) bool {
			for _, id := range ids {
				if bytes.Contains(d, id[1]) && (seq == nil || bytes.Contains(d, seq[1])) {
					return true
				}
			}
			return false
		}
	}
	b := branchRe.FindSubmatch(head)
	return func(d []byte) bool { return b != nil && bytes.Contains(d, b[1]) }
}

// txKeyOf approximates the balancer's transaction key: the method and
// the top Via line as written.
func txKeyOf(msg []byte) string {
	method, _, _ := bytes.Cut(msg, []byte(" "))
	return string(method) + "|" + viaLine.FindString(string(msg))
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// send delivers msg from src's sending socket to the balancer and
// watches the caller's sockets and every next hop until the outcome is
// clear.
func (l *lab) send(src netip.Addr, msg []byte) observation {
	c := l.caller[src]
	dst := l.bal4
	if src.Is6() {
		dst = l.bal6
	}
	peers := append(append([]*responder{}, l.cores...), l.hops...)
	// Stale datagrams of earlier jobs.
	for _, ch := range append([]chan datagram{c.in}, chans(peers)...) {
		for len(ch) > 0 {
			<-ch
		}
	}
	mine := marker(msg)
	isInvite := bytes.HasPrefix(msg, []byte("INVITE "))
	if _, err := c.src.WriteToUDPAddrPort(msg, dst); err != nil {
		l.t.Fatalf("send: %v", err)
	}
	var ob observation
	end := time.Now().Add(window)
	timer := time.NewTimer(window)
	defer timer.Stop()
	agg := make(chan datagram, 64)
	stop := make(chan struct{})
	defer close(stop)
	for _, p := range peers {
		go func(p *responder) {
			for {
				select {
				case d := <-p.got:
					agg <- d
				case <-stop:
					return
				}
			}
		}(p)
	}
	for {
		select {
		case d := <-agg:
			if !mine(d.data) {
				continue
			}
			ob.forwards = append(ob.forwards, d)
		case d := <-c.in:
			if !mine(d.data) || !bytes.HasPrefix(d.data, []byte("SIP/2.0 ")) {
				continue
			}
			ob.replyAt = append(ob.replyAt, d.at)
			code, _ := strconv.Atoi(string(d.data[8:11]))
			if code >= 200 && ob.final == nil {
				ob.final = d.data
				if isInvite && code >= 300 {
					c.src.WriteToUDPAddrPort(ackFor(msg, d.data), dst)
				}
				// Room for anything else it would send (a second
				// final, a copy elsewhere), then decide.
				if e := time.Now().Add(300 * time.Millisecond); e.Before(end) {
					end = e
					timer.Reset(time.Until(end))
				}
			}
		case <-timer.C:
			ob.outcome = classify(ob, l.cores)
			return ob
		}
	}
}

func chans(rs []*responder) []chan datagram {
	var out []chan datagram
	for _, r := range rs {
		out = append(out, r.got)
	}
	return out
}

func classify(ob observation, cores []*responder) outcome {
	for _, f := range ob.forwards {
		for _, c := range cores {
			if f.at == c.addr {
				return core
			}
		}
	}
	if len(ob.forwards) > 0 {
		return hop
	}
	if ob.final != nil {
		code, _ := strconv.Atoi(string(ob.final[8:11]))
		return answer(code)
	}
	return drop
}

// ackFor is the caller's ACK of a non-2xx final to its INVITE (RFC 3261
// 17.1.1.3): the INVITE's Request-URI and top Via, the response's From,
// To, Call-ID, CSeq number. It stops the balancer's retransmissions.
func ackFor(invite, resp []byte) []byte {
	line, _, _ := bytes.Cut(invite, []byte("\r\n"))
	f := strings.Fields(string(line))
	ruri := "sip:invalid"
	if len(f) == 3 {
		ruri = f[1]
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "ACK %s SIP/2.0\r\n", ruri)
	head, _, _ := bytes.Cut(resp, []byte("\r\n\r\n"))
	vias := 0
	for _, l := range strings.Split(string(head), "\r\n")[1:] {
		name, _, _ := strings.Cut(l, ":")
		switch n := strings.ToLower(strings.TrimSpace(name)); n {
		case "via", "v":
			if vias++; vias == 1 {
				b.WriteString(l + "\r\n")
			}
		case "from", "f", "to", "t", "call-id", "i":
			b.WriteString(l + "\r\n")
		case "cseq":
			if m := cseqLine.FindStringSubmatch(l); m != nil {
				fmt.Fprintf(&b, "CSeq: %s ACK\r\n", m[1])
			}
		}
	}
	b.WriteString("Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
	return b.Bytes()
}

// job is one row sent from one source.
type job struct {
	r   row
	src netip.Addr
	msg []byte
	key string
}

// schedule orders the jobs so that no two with the same transaction key
// run within txLinger of each other, sleeping only when every job left
// waits; run is called for each in turn.
func schedule(jobs []job, run func(job)) {
	last := map[string]time.Time{}
	for len(jobs) > 0 {
		pick := -1
		var soonest time.Time
		for i, j := range jobs {
			at, ok := last[j.key]
			if !ok || time.Since(at) >= txLinger {
				pick = i
				break
			}
			if free := at.Add(txLinger); soonest.IsZero() || free.Before(soonest) {
				soonest = free
			}
		}
		if pick < 0 {
			time.Sleep(time.Until(soonest))
			continue
		}
		j := jobs[pick]
		jobs = append(jobs[:pick], jobs[pick+1:]...)
		run(j)
		last[j.key] = time.Now()
	}
}

// sortedKeys is for stable reports.
func sortedKeys(m map[string]string) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}

// describe shows what came out: the start line and Via/Route lines of
// each forward, and each response's destination and status line.
func (ob observation) describe() string {
	var b strings.Builder
	for _, f := range ob.forwards {
		fmt.Fprintf(&b, "\n    %v got: %s", f.at, summary(f.data))
	}
	for _, at := range ob.replyAt {
		fmt.Fprintf(&b, "\n    response at %v", at)
	}
	if ob.final != nil {
		fmt.Fprintf(&b, "\n    final: %s", summary(ob.final))
	}
	return b.String()
}

func summary(msg []byte) string {
	head, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	lines := strings.Split(string(head), "\r\n")
	out := []string{lines[0]}
	for _, l := range lines[1:] {
		n, _, _ := strings.Cut(strings.ToLower(l), ":")
		switch strings.TrimSpace(n) {
		case "via", "v", "route", "record-route", "max-forwards", "unsupported":
			out = append(out, l)
		}
	}
	return strings.Join(out, " | ")
}
