package resolve

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/sipedge/sipedge/daemon/resolve/dnstest"
)

// zone is the test server's data, changed by the tests while it serves.
type zone struct {
	mu      sync.Mutex
	rrs     map[zkey][]dns.RR
	rcode   map[string]int  // name (or "*": all) -> forced rcode (e.g. SERVFAIL)
	wrongQ  map[string]bool // name -> answered with another question
	silent  bool            // no answer at all
	queries map[string]int  // "udp SRV name." -> count
}

type zkey = dnstest.Key

func newZone() *zone {
	return &zone{rrs: map[zkey][]dns.RR{}, rcode: map[string]int{}, wrongQ: map[string]bool{}, queries: map[string]int{}}
}

// set replaces the records of each (name, type) given, in zone-file
// syntax: "core1.example.test. 30 IN A 192.0.2.21".
func (z *zone) set(t testing.TB, lines ...string) {
	t.Helper()
	z.mu.Lock()
	defer z.mu.Unlock()
	dnstest.SetIn(t, z.rrs, lines...)
}

func (z *zone) del(name string, qtype uint16) {
	z.mu.Lock()
	defer z.mu.Unlock()
	delete(z.rrs, zkey{Name: dns.Fqdn(name), Qtype: qtype})
}

func (z *zone) setRcode(name string, rc int) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if name != "*" {
		name = dns.Fqdn(name)
	}
	if rc < 0 {
		delete(z.rcode, name)
	} else {
		z.rcode[name] = rc
	}
}

func (z *zone) setSilent(b bool) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.silent = b
}

// count is how many queries (network "udp"/"tcp", type, name) came.
func (z *zone) count(network string, qtype uint16, name string) int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.queries[network+" "+dns.TypeToString[qtype]+" "+dns.Fqdn(name)]
}

func (z *zone) total() int {
	z.mu.Lock()
	defer z.mu.Unlock()
	n := 0
	for _, c := range z.queries {
		n += c
	}
	return n
}

func (z *zone) exists(name string) bool {
	for k := range z.rrs {
		if k.Name == name {
			return true
		}
	}
	return false
}

func (z *zone) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	network := w.LocalAddr().Network()
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	z.mu.Lock()
	z.queries[network+" "+dns.TypeToString[q.Qtype]+" "+name]++
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if z.silent {
		z.mu.Unlock()
		return
	}
	if z.wrongQ[name] {
		m.Question[0].Name = "other.example.test."
	}
	rc, ok := z.rcode[name]
	if !ok {
		rc, ok = z.rcode["*"]
	}
	if ok {
		m.Rcode = rc
	} else {
		// Follow CNAMEs as a recursive server would.
		owner := name
		for range 10 {
			c := z.rrs[zkey{Name: owner, Qtype: dns.TypeCNAME}]
			if len(c) == 0 || q.Qtype == dns.TypeCNAME {
				break
			}
			m.Answer = append(m.Answer, c[0])
			owner = strings.ToLower(c[0].(*dns.CNAME).Target)
		}
		m.Answer = append(m.Answer, z.rrs[zkey{Name: owner, Qtype: q.Qtype}]...)
		if len(m.Answer) == 0 && !z.exists(owner) {
			m.Rcode = dns.RcodeNameError
		}
	}
	z.mu.Unlock()
	if network == "udp" {
		size := dns.MinMsgSize
		if o := r.IsEdns0(); o != nil {
			size = int(o.UDPSize())
			m.SetEdns0(o.UDPSize(), false)
		}
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

// testServer is a zone served on 127.0.0.1, one port for UDP and TCP.
type testServer struct {
	addr netip.AddrPort
	stop func()
}

func serve(t testing.TB, z *zone) *testServer {
	t.Helper()
	addr, stop := dnstest.Serve(t, z)
	return &testServer{addr: addr, stop: stop}
}

// deadServer is an address where nothing listens (UDP and TCP closed).
func deadServer(t testing.TB) netip.AddrPort {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ap := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	pc.Close()
	return ap
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newResolver(t testing.TB, timeout time.Duration, servers ...netip.AddrPort) *Resolver {
	t.Helper()
	r, err := New(Options{Servers: servers, Timeout: timeout, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func targetsString(ts []Target) string {
	var b strings.Builder
	for _, t := range ts {
		fmt.Fprintf(&b, "%s p%d w%d %s %s; ", t.Addr, t.Priority, t.Weight, t.Host, t.TTL)
	}
	return b.String()
}
