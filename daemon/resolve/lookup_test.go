package resolve

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func exampleZone(t testing.TB) *zone {
	z := newZone()
	z.set(t,
		"_sip._udp.example.test. 60 IN SRV 10 60 5070 core1.example.test.",
		"_sip._udp.example.test. 60 IN SRV 10 20 5080 Core2.Example.Test.",
		"_sip._udp.example.test. 60 IN SRV 20 0 5060 core3.example.test.",
		"core1.example.test. 30 IN A 192.0.2.21",
		"core1.example.test. 300 IN AAAA 2001:db8::21",
		"core2.example.test. 120 IN A 192.0.2.22",
		"core3.example.test. 300 IN A 198.51.100.23",
		"_sip._tcp.example.test. 60 IN SRV 5 1 5090 core1.example.test.",
		"_sips._tcp.example.test. 60 IN SRV 5 1 5091 core2.example.test.",
		"plain.example.test. 45 IN A 192.0.2.30",
		"plain.example.test. 40 IN AAAA 2001:db8::30",
		"_sip._udp.closed.example.test. 60 IN SRV 0 0 0 .",
		"_sip._udp.half.example.test. 60 IN SRV 10 1 5060 gone.example.test.",
		"_sip._udp.half.example.test. 60 IN SRV 10 1 5060 core2.example.test.",
		"_sip._udp.nowhere.example.test. 60 IN SRV 10 1 5060 gone.example.test.",
		"alias.example.test. 20 IN CNAME core1.example.test.",
		"zero.example.test. 60 IN A 0.0.0.0",
	)
	var big []string
	for i := range 100 {
		big = append(big, fmt.Sprintf("big.example.test. 60 IN AAAA 2001:db8::1:%x", i+1))
	}
	z.set(t, big...)
	return z
}

func TestLookup(t *testing.T) {
	z := exampleZone(t)
	srv := serve(t, z)
	r := newResolver(t, 2*time.Second, srv.addr)
	tests := []struct {
		name, transport string
		port            uint16
		want            string // targetsString
		ttl             time.Duration
		srv             bool
	}{
		{name: "example.test", want: "192.0.2.21:5070 p10 w60 core1.example.test 30s; [2001:db8::21]:5070 p10 w60 core1.example.test 30s; " +
			"192.0.2.22:5080 p10 w20 core2.example.test 1m0s; 198.51.100.23:5060 p20 w0 core3.example.test 1m0s; ", ttl: 30 * time.Second, srv: true},
		{name: "Example.Test.", transport: "TCP", want: "192.0.2.21:5090 p5 w1 core1.example.test 30s; [2001:db8::21]:5090 p5 w1 core1.example.test 30s; ", ttl: 30 * time.Second, srv: true},
		{name: "example.test", transport: "tls", want: "192.0.2.22:5091 p5 w1 core2.example.test 1m0s; ", ttl: 60 * time.Second, srv: true},
		// An explicit port skips SRV.
		{name: "core1.example.test", port: 5999, want: "192.0.2.21:5999 p0 w1 core1.example.test 30s; [2001:db8::21]:5999 p0 w1 core1.example.test 30s; ", ttl: 30 * time.Second},
		// No SRV: A and AAAA on the default port.
		{name: "plain.example.test", want: "192.0.2.30:5060 p0 w1 plain.example.test 40s; [2001:db8::30]:5060 p0 w1 plain.example.test 40s; ", ttl: 40 * time.Second},
		{name: "plain.example.test", transport: "tls", want: "192.0.2.30:5061 p0 w1 plain.example.test 40s; [2001:db8::30]:5061 p0 w1 plain.example.test 40s; ", ttl: 40 * time.Second},
		// A target without an address is left out.
		{name: "half.example.test", want: "192.0.2.22:5060 p10 w1 core2.example.test 1m0s; ", ttl: 60 * time.Second, srv: true},
		// A CNAME is followed; its TTL counts.
		{name: "alias.example.test", port: 5060, want: "192.0.2.21:5060 p0 w1 alias.example.test 20s; [2001:db8::21]:5060 p0 w1 alias.example.test 20s; ", ttl: 20 * time.Second},
		// IP literals: nothing asked.
		{name: "192.0.2.9", want: "192.0.2.9:5060 p0 w1 192.0.2.9 0s; "},
		{name: "[2001:db8::9]", transport: "tls", want: "[2001:db8::9]:5061 p0 w1 2001:db8::9 0s; "},
		{name: "2001:db8::9", port: 7000, want: "[2001:db8::9]:7000 p0 w1 2001:db8::9 0s; "},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s/%d", tt.name, tt.transport, tt.port), func(t *testing.T) {
			before := z.total()
			res, err := r.Lookup(ctxT(t), tt.name, tt.transport, tt.port)
			if err != nil {
				t.Fatal(err)
			}
			if got := targetsString(res.Targets); got != tt.want {
				t.Errorf("targets\n got %s\nwant %s", got, tt.want)
			}
			if res.TTL != tt.ttl || res.SRV != tt.srv {
				t.Errorf("TTL %s SRV %v, want %s %v", res.TTL, res.SRV, tt.ttl, tt.srv)
			}
			if lit := IsLiteral(tt.name); res.Literal != lit || (lit && z.total() != before) {
				t.Errorf("literal %v, %d queries for it", res.Literal, z.total()-before)
			}
		})
	}
	if n := z.count("udp", dns.TypeSRV, "_sip._udp.core1.example.test"); n != 0 {
		t.Errorf("an explicit port asked SRV %d times", n)
	}
	if n := z.count("udp", dns.TypeSRV, "_sips._tcp.plain.example.test"); n != 1 {
		t.Errorf("tls asked _sips._tcp %d times, want 1", n)
	}
}

func TestLookupErrors(t *testing.T) {
	z := exampleZone(t)
	z.setRcode("broken.example.test", dns.RcodeServerFailure)
	z.set(t, "_sip._udp.failing.example.test. 60 IN SRV 10 1 5060 broken.example.test.")
	z.mu.Lock()
	z.wrongQ["_sip._udp.spoof.example.test."] = true
	z.mu.Unlock()
	srv := serve(t, z)
	r := newResolver(t, time.Second, srv.addr)
	tests := []struct {
		name, transport string
		want            error
	}{
		{"closed.example.test", "udp", ErrNoService},
		{"missing.example.test", "udp", ErrNotFound},
		{"nowhere.example.test", "udp", ErrNotFound},
		{"zero.example.test", "udp", ErrNotFound},         // 0.0.0.0 is no target
		{"sfail.example.test", "", ErrServerFailure},      // SERVFAIL on SRV
		{"failing.example.test", "udp", ErrServerFailure}, // SERVFAIL on a target: no partial set
		{"spoof.example.test", "udp", ErrServerFailure},   // answer to another question
	}
	z.setRcode("_sip._udp.sfail.example.test", dns.RcodeServerFailure)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := r.Lookup(ctxT(t), tt.name, tt.transport, 0)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v (targets %s), want %v", err, targetsString(res.Targets), tt.want)
			}
			if len(res.Targets) != 0 {
				t.Errorf("targets with an error: %s", targetsString(res.Targets))
			}
		})
	}
	for _, bad := range []struct{ name, transport string }{{"example.test", "sctp"}, {"bad..name", "udp"}, {"", "udp"}} {
		if _, err := r.Lookup(ctxT(t), bad.name, bad.transport, 0); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("Lookup(%q, %q) = %v, want a usage error", bad.name, bad.transport, err)
		}
	}
}

// TestLookupTruncated: an answer larger than the EDNS0 size comes back
// truncated over UDP and is asked again over TCP; the addresses used
// are bounded.
func TestLookupTruncated(t *testing.T) {
	z := exampleZone(t)
	srv := serve(t, z)
	r := newResolver(t, 2*time.Second, srv.addr)
	res, err := r.Lookup(ctxT(t), "big.example.test", "udp", 5060)
	if err != nil {
		t.Fatal(err)
	}
	if z.count("udp", dns.TypeAAAA, "big.example.test") != 1 || z.count("tcp", dns.TypeAAAA, "big.example.test") != 1 {
		t.Errorf("AAAA asked udp %d tcp %d times, want once each", z.count("udp", dns.TypeAAAA, "big.example.test"), z.count("tcp", dns.TypeAAAA, "big.example.test"))
	}
	if len(res.Targets) != maxAddrsPerHost {
		t.Errorf("%d targets, want the bound %d", len(res.Targets), maxAddrsPerHost)
	}
	if res.Targets[0].Addr != netip.MustParseAddrPort("[2001:db8::1:1]:5060") {
		t.Errorf("first target %s", res.Targets[0].Addr)
	}
	// A small answer stays on UDP.
	if _, err := r.Lookup(ctxT(t), "plain.example.test", "udp", 5060); err != nil {
		t.Fatal(err)
	}
	if n := z.count("tcp", dns.TypeA, "plain.example.test"); n != 0 {
		t.Errorf("a small answer went over TCP %d times", n)
	}
}

// TestLookupNextServer: a server that is down, fails or does not answer
// is passed over for the next one, within the timeout.
func TestLookupNextServer(t *testing.T) {
	good := exampleZone(t)
	goodSrv := serve(t, good)
	failing := newZone()
	failing.setRcode("*", dns.RcodeServerFailure)
	silent := newZone()
	silent.setSilent(true)
	for _, tc := range []struct {
		name  string
		first netip.AddrPort
	}{
		{"down", deadServer(t)},
		{"servfail", serve(t, failing).addr},
		{"silent", serve(t, silent).addr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			timeout := 300 * time.Millisecond
			r := newResolver(t, timeout, tc.first, goodSrv.addr)
			start := time.Now()
			res, err := r.Lookup(ctxT(t), "example.test", "udp", 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Targets) != 4 {
				t.Errorf("targets %s", targetsString(res.Targets))
			}
			// Each of the 4 queries may wait the timeout on the first
			// server, no more.
			if d := time.Since(start); d > 4*timeout+2*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
	t.Run("all fail", func(t *testing.T) {
		r := newResolver(t, 200*time.Millisecond, deadServer(t), serve(t, silent).addr)
		if _, err := r.Lookup(ctxT(t), "example.test", "udp", 0); !errors.Is(err, ErrServerFailure) {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestLookupCancel: ending the context ends a query at once, well before
// its timeout.
func TestLookupCancel(t *testing.T) {
	silent := newZone()
	silent.setSilent(true)
	r := newResolver(t, 30*time.Second, serve(t, silent).addr)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := r.Lookup(ctx, "example.test", "udp", 0)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s after the cancel", d)
	}
}

func TestNewServers(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "resolv.conf")
	os.WriteFile(conf, []byte("# test\nsearch example.test\nnameserver 192.0.2.53\nnameserver 2001:db8::53\nnameserver not-an-ip\n"), 0o644)
	r, err := New(Options{ResolvConf: conf, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(r.Servers()); got != "[192.0.2.53:53 [2001:db8::53]:53]" {
		t.Errorf("servers = %s", got)
	}
	empty := filepath.Join(dir, "empty.conf")
	os.WriteFile(empty, []byte("search example.test\n"), 0o644)
	for _, path := range []string{empty, filepath.Join(dir, "missing.conf")} {
		if _, err := New(Options{ResolvConf: path}); !errors.Is(err, ErrNoServers) {
			t.Errorf("%s: err = %v, want ErrNoServers", filepath.Base(path), err)
		}
	}
	if _, err := New(Options{Servers: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:0")}}); err == nil {
		t.Error("port 0 accepted")
	}
}

func TestSameTargets(t *testing.T) {
	a := Target{Addr: netip.MustParseAddrPort("192.0.2.1:5060"), Priority: 1, Weight: 2, Host: "a", TTL: time.Second}
	b := Target{Addr: netip.MustParseAddrPort("192.0.2.2:5060"), Priority: 1, Weight: 2, Host: "b"}
	a2 := a
	a2.TTL = time.Hour
	aw := a
	aw.Weight = 3
	if !SameTargets([]Target{a, b}, []Target{b, a2}) {
		t.Error("order or TTL made a difference")
	}
	if SameTargets([]Target{a, b}, []Target{b, aw}) || SameTargets([]Target{a}, []Target{a, b}) || SameTargets(nil, []Target{a}) {
		t.Error("different sets reported the same")
	}
}
