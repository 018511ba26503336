// Package dnstest is a DNS server for tests of the packages that resolve
// names of the configuration (a Core given by name): a zone the test
// changes while it serves, on 127.0.0.1, UDP and TCP on one port.
package dnstest

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Server serves a zone until the test ends.
type Server struct {
	mu    sync.Mutex
	rrs   map[Key][]dns.RR
	fail  bool
	asked int
	addr  netip.AddrPort
}

// Key is a name (lower case, fully qualified) and a record type.
type Key struct {
	Name  string
	Qtype uint16
}

// SetIn replaces in rrs the records of each (name, type) given in
// zone-file syntax ("core.test. 30 IN A 127.0.0.1"); the caller holds
// whatever lock guards rrs.
func SetIn(t testing.TB, rrs map[Key][]dns.RR, lines ...string) {
	t.Helper()
	fresh := map[Key]bool{}
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatalf("bad record %q: %v", l, err)
		}
		k := Key{strings.ToLower(rr.Header().Name), rr.Header().Rrtype}
		if !fresh[k] {
			rrs[k], fresh[k] = nil, true
		}
		rrs[k] = append(rrs[k], rr)
	}
}

// New starts a server; it stops when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{rrs: map[Key][]dns.RR{}}
	s.addr, _ = Serve(t, s)
	return s
}

// Serve serves h on 127.0.0.1, UDP and TCP on one port, until stop or
// the end of the test.
func Serve(t testing.TB, h dns.Handler) (addr netip.AddrPort, stop func()) {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = pc.LocalAddr().(*net.UDPAddr).AddrPort()
		l, err := net.Listen("tcp", addr.String())
		if err != nil {
			pc.Close()
			continue // the port is taken for TCP: another one
		}
		srvs := []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: l, Handler: h}}
		for _, srv := range srvs {
			started := make(chan struct{})
			srv.NotifyStartedFunc = func() { close(started) }
			go srv.ActivateAndServe()
			select {
			case <-started:
			case <-time.After(5 * time.Second):
				t.Fatal("test DNS server did not start")
			}
		}
		var once sync.Once
		stop = func() {
			once.Do(func() {
				for _, srv := range srvs {
					srv.Shutdown()
				}
			})
		}
		t.Cleanup(stop)
		return addr, stop
	}
	t.Fatal("no free port for both UDP and TCP")
	return netip.AddrPort{}, nil
}

// Addr is the server's address (UDP and TCP).
func (s *Server) Addr() netip.AddrPort { return s.addr }

// Set replaces the records of each (name, type) given, in zone-file
// syntax: "_sip._udp.cores.test. 1 IN SRV 10 1 5060 a.cores.test.".
func (s *Server) Set(t testing.TB, lines ...string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	SetIn(t, s.rrs, lines...)
}

// Delete removes the records of a name and type.
func (s *Server) Delete(name string, qtype uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.rrs, Key{dns.Fqdn(strings.ToLower(name)), qtype})
}

// Fail makes every answer SERVFAIL (on) or the zone's again (off).
func (s *Server) Fail(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = on
}

// Asked is how many queries came.
func (s *Server) Asked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.asked
}

// ServeDNS answers from the zone: the records of the name and type, or
// NXDOMAIN for a name the zone does not hold at all.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	s.mu.Lock()
	s.asked++
	switch {
	case s.fail:
		m.Rcode = dns.RcodeServerFailure
	default:
		m.Answer = append(m.Answer, s.rrs[Key{name, q.Qtype}]...)
		if len(m.Answer) == 0 && !s.holds(name) {
			m.Rcode = dns.RcodeNameError
		}
	}
	s.mu.Unlock()
	w.WriteMsg(m)
}

func (s *Server) holds(name string) bool {
	for k := range s.rrs {
		if k.Name == name {
			return true
		}
	}
	return false
}
