package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/config"
	"github.com/sipedge/sipedge/scripts/bench/streamload"
)

func step(rate, attempted, failed int, gen ...string) streamStep {
	return streamStep{Rate: rate, Attempted: attempted, Succeeded: attempted - failed, Failed: failed, Generator: gen,
		CPUSeconds: float64(attempted) / 10000, Reasons: map[string]int{"timeout INVITE": failed}}
}

// run feeds steps to a ladder over rates as the bench does: it stops
// at the first step that ends the ladder.
func run(rates []int, steps ...streamStep) *ladder {
	l := &ladder{Row: "calls-tcp"}
	for i, s := range steps {
		if !l.add(s, i == len(rates)-1) {
			break
		}
	}
	return l
}

func TestLadder(t *testing.T) {
	rates := []int{100, 200, 300}
	// 0.1 % failed is still clean; more is not.
	l := run(rates, step(100, 500, 0), step(200, 1000, 1), step(300, 1500, 5), step(400, 1, 0))
	if l.Best != 200 || l.End != endFailed || len(l.Steps) != 3 || !strings.Contains(l.Why, "5 of 1500 failed") || !strings.Contains(l.Why, "timeout INVITE 5") {
		t.Errorf("failed ladder: best %d, end %q, %d steps, why %q", l.Best, l.End, len(l.Steps), l.Why)
	}
	if c := l.cell(); c != "200" || l.lowerBound() {
		t.Errorf("failed ladder cell %q, lower bound %v", c, l.lowerBound())
	}
	// The generator's verdict comes first, failures or not.
	l = run(rates, step(100, 500, 0), step(200, 1000, 40, "host CPU 97 % busy"))
	if l.Best != 100 || l.End != endGenerator || !l.lowerBound() || !strings.HasPrefix(l.Why, "GENERATOR-LIMITED: host CPU 97 % busy (40 of 1000 failed)") {
		t.Errorf("generator ladder: best %d, end %q, why %q", l.Best, l.End, l.Why)
	}
	if c := l.cell(); c != ">= 100 (GENERATOR-LIMITED at 200)" {
		t.Errorf("generator cell %q", c)
	}
	l = run(rates, step(100, 500, 0, "offered 400 of 500 attempts"))
	if c := l.cell(); c != "GENERATOR-LIMITED at 100" || l.Best != 0 {
		t.Errorf("generator at the first step: cell %q, best %d", c, l.Best)
	}
	// Every step clean: the ladder's top, a lower bound.
	l = run(rates, step(100, 500, 0), step(200, 1000, 0), step(300, 1500, 0))
	if l.Best != 300 || l.End != endTop || !l.lowerBound() || l.cell() != ">= 300 (ladder top)" {
		t.Errorf("top ladder: best %d, end %q, cell %q", l.Best, l.End, l.cell())
	}
	l = run(rates, step(100, 0, 0))
	if l.End != endFailed || l.Why != "no attempts" || l.cell() != "none clean" {
		t.Errorf("no attempts: end %q, why %q, cell %q", l.End, l.Why, l.cell())
	}
	var none *ladder
	if none.cell() != "-" {
		t.Errorf("nil ladder cell %q", none.cell())
	}
}

func TestCompareRates(t *testing.T) {
	lad := func(best int, end string) *ladder { return &ladder{Best: best, End: end} }
	for _, tc := range []struct {
		us, base   *ladder
		ratio, met string
	}{
		{lad(3000, endFailed), lad(2000, endFailed), "1.50", "met"},
		{lad(2000, endFailed), lad(2000, endFailed), "1.00", "met"},
		{lad(1000, endFailed), lad(2000, endFailed), "0.50", "NOT met"},
		{lad(3000, endGenerator), lad(2000, endFailed), ">= 1.50", "met"},
		{lad(1000, endGenerator), lad(2000, endFailed), ">= 0.50", "undetermined (bound)"},
		{lad(3000, endFailed), lad(2000, endGenerator), "<= 1.50", "undetermined (bound)"},
		{lad(1000, endFailed), lad(2000, endTop), "<= 0.50", "NOT met"},
		{lad(3000, endTop), lad(3000, endGenerator), "? (both bounded)", "undetermined (bound)"},
		{lad(1000, endFailed), lad(0, endFailed), "n/a", "met"},
		{lad(0, endFailed), lad(0, endFailed), "n/a", "NOT met (neither clean)"},
		{lad(1000, endCrash), lad(2000, endFailed), "0.50", "NOT met"},
		{lad(1000, endFailed), lad(0, endError), "-", "-"},
		{nil, lad(1000, endFailed), "-", "-"},
	} {
		ratio, met := compareRates(tc.us, tc.base)
		if ratio != tc.ratio || met != tc.met {
			t.Errorf("compareRates(%+v, %+v) = %q, %q; want %q, %q", tc.us, tc.base, ratio, met, tc.ratio, tc.met)
		}
	}
}

func TestSameRateCPU(t *testing.T) {
	us := run([]int{1000, 2000, 3000}, step(1000, 5000, 0), step(2000, 10000, 0), step(3000, 15000, 0))
	base := run([]int{1000, 2000, 3000}, step(1000, 5000, 0), step(2000, 10000, 100))
	base.Steps[0].CPUSeconds = 1 // 0.2 CPU-s per 1,000
	rate, u, k, ok := sameRateCPU(us, base)
	if !ok || rate != 1000 || u < 0.0999 || u > 0.1001 || k < 0.1999 || k > 0.2001 {
		t.Errorf("sameRateCPU = %d, %.4f, %.4f, %v; want 1000, 0.1, 0.2", rate, u, k, ok)
	}
	if _, _, _, ok := sameRateCPU(us, run([]int{1000}, step(1000, 5000, 100))); ok {
		t.Error("sameRateCPU found a rate where Kamailio was not clean")
	}
	if rate, _, ok := bestCPU(us); !ok || rate != 3000 {
		t.Errorf("bestCPU = %d, %v; want 3000", rate, ok)
	}
}

func TestParseStreamFlags(t *testing.T) {
	if got, err := parseInts("500, 1000,2000"); err != nil || !slices.Equal(got, []int{500, 1000, 2000}) {
		t.Errorf("parseInts = %v, %v", got, err)
	}
	for _, bad := range []string{"", "1,x", "0", "-5"} {
		if _, err := parseInts(bad); err == nil {
			t.Errorf("parseInts(%q) took it", bad)
		}
	}
	if got, err := parseRows("idle-tls,calls-tcp"); err != nil || !slices.Equal(got, []string{"calls-tcp", "idle-tls"}) {
		t.Errorf("parseRows = %v, %v (want the bench's order)", got, err)
	}
	if _, err := parseRows("calls-udp"); err == nil {
		t.Error("parseRows took an unknown row")
	}
}

func TestReportStream(t *testing.T) {
	rates := []int{1000, 2000, 3000}
	k := &streamResult{Target: "kamailio",
		CallsTCP:   run(rates, step(1000, 5000, 0), step(2000, 10000, 300)),
		CallsTLS:   run(rates, step(1000, 5000, 0), step(2000, 10000, 0), step(3000, 15000, 200)),
		Handshakes: run(rates, step(1000, 5000, 0), step(2000, 10000, 0), step(3000, 15000, 0)),
		IdleTCP:    &idleRow{Network: "tcp", Wanted: 10000, Open: 10000, PerConnKiB: 20.5},
		IdleTLS:    &idleRow{Network: "tls", Wanted: 10000, Open: 10000, PerConnKiB: 61.2},
		Notes:      []string{"idle-tls: something"}}
	k.CallsTCP.Steps[0].CPUSeconds = 1.5
	s := &streamResult{Target: "sipedge",
		CallsTCP:   run(rates, step(1000, 5000, 0), step(2000, 10000, 0), step(3000, 15000, 0, "host CPU 96 % busy")),
		CallsTLS:   run(rates, step(1000, 5000, 0), step(2000, 10000, 0), step(3000, 15000, 0)),
		Handshakes: run(rates, step(1000, 5000, 0), step(2000, 10000, 50)),
		IdleTCP:    &idleRow{Network: "tcp", Wanted: 10000, Open: 10000, PerConnKiB: 12.25},
		IdleTLS:    &idleRow{Network: "tls", Wanted: 10000, Open: 9000, PerConnKiB: 40}}
	for _, r := range []*streamResult{k, s} {
		r.CallsTLS.Row, r.Handshakes.Row = "calls-tls", "handshakes"
	}
	var b strings.Builder
	o := options{streamConns: 10, callMS: 100, streamStep: 5 * time.Second, streamIdle: 10000}
	reportStream(&b, o, []*streamResult{k, s})
	out := b.String()
	t.Log("\n" + out)
	lines := strings.Split(out, "\n")
	find := func(prefix string) string {
		for _, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), prefix) {
				return l
			}
		}
		t.Errorf("no line %q in\n%s", prefix, out)
		return ""
	}
	for prefix, want := range map[string][]string{
		"calls/s, 10 TCP connections":            {"1000", ">= 2000 (GENERATOR-LIMITED at 3000)", ">= 2.00", "met"},
		"calls/s, 10 TLS connections":            {"2000", ">= 3000 (ladder top)", ">= 1.50", "met"},
		"new TLS handshakes/s":                   {">= 3000 (ladder top)", "1000", "<= 0.33", "NOT met"},
		"KiB (Pss) per idle TCP connection":      {"20.5", "12.2", "0.60", "<= 16 KiB", "met"},
		"KiB (Pss) per idle TLS connection":      {"61.2", "40.0 (only 9000 of 10000 open)", "<= Kamailio's", "-"},
		"CPU-s per 1,000 calls, TCP, at 1000":    {"0.300", "0.100", "0.33", "met"},
		"CPU-s per 1,000 calls, TLS, at 2000":    {"0.100", "0.100", "1.00", "met"},
		"kamailio idle tls: 10000 of 10000":      {"61.2 KiB per connection"},
		"kamailio: idle-tls: something":          nil,
		"caveats: Kamailio runs these rows with": {"1 TCP worker (tcp_children=1", "kamailio#3791"},
	} {
		l := find(prefix)
		for _, w := range want {
			if !strings.Contains(l, w) {
				t.Errorf("line %q lacks %q", l, w)
			}
			if w == "met" && strings.Contains(l, "NOT met") {
				t.Errorf("line %q: NOT met", l)
			}
		}
	}
	for _, w := range []string{"300 of 10000 failed (3.00 %): timeout INVITE 300", "GENERATOR-LIMITED: host CPU 96 % busy"} {
		if !strings.Contains(out, w) {
			t.Errorf("the steps lack %q", w)
		}
	}
	if strings.Contains(find("KiB (Pss) per idle TLS connection"), "NOT met") {
		t.Error("a TLS memory row with too few connections open is judged")
	}
	if !strings.Contains(out, "GENERATOR-LIMITED, and that row's figure is a lower bound") {
		t.Error("the generator caveat is missing")
	}

	// One balancer only: no ratios, each its own CPU figure.
	b.Reset()
	reportStream(&b, o, []*streamResult{s})
	if out := b.String(); !strings.Contains(out, "CPU-s per 1,000 calls, TCP, at its highest clean step") || !strings.Contains(out, "0.100 at 2000") {
		t.Errorf("one balancer:\n%s", out)
	}
}

func TestSipedgeStreamYAML(t *testing.T) {
	// Without the stream rows, the UDP rows' configuration as it was.
	want := "node: {name: bench, profile: single, data_dir: /d}\nlog: {level: warn, format: json}\n" +
		"sip:\n  listen: [\"udp:127.0.0.1:26100\"]\n  algorithm: round-robin\n  cores:\n" +
		"    - {name: core1, address: \"127.0.0.1:26120\"}\n    - {name: core2, address: \"127.0.0.1:26130\"}\n" +
		"  overload: {queue_delay: 100ms}\n" +
		"security: {trusted: [\"127.0.0.1/32\"], flood: {requests: 0}}\n"
	if got := sipedgeYAML("/d", 26100, []int{26120, 26130}, "overload: {queue_delay: 100ms}", nil); got != want {
		t.Errorf("UDP config:\n%s\nwant:\n%s", got, want)
	}
	// With them: sipedge's own validation takes it.
	dir := t.TempDir()
	pki, err := streamload.WritePKI(dir, "sipedge.bench", []net.IP{net.IPv4(127, 0, 0, 1)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	text := sipedgeYAML(filepath.Join(dir, "data"), 29000, []int{29020, 29030}, "",
		&sipedgeStream{TCPPort: 29001, TLSPort: 29002, Cert: pki.CertFile, Key: pki.KeyFile, MaxConns: streamMaxConns})
	c, err := config.Parse("sipedge.yaml", []byte(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if !slices.Equal(c.SIP.Listen, []string{"udp:127.0.0.1:29000", "tcp:127.0.0.1:29001", "tls:127.0.0.1:29002"}) {
		t.Errorf("listen %v", c.SIP.Listen)
	}
	if c.SIP.TCP.MaxConnections != streamMaxConns || c.SIP.TCP.MaxPerSource != streamMaxConns {
		t.Errorf("tcp caps %+v", c.SIP.TCP)
	}
	if len(c.SIP.TLS.Certificates) != 1 || c.SIP.TLS.Certificates[0].Cert != pki.CertFile || c.SIP.TLS.Certificates[0].Key != pki.KeyFile {
		t.Errorf("tls %+v", c.SIP.TLS)
	}
	if streamMaxConns-1000 < 10000 {
		t.Errorf("streamMaxConns %d leaves no room for the 10,000 idle connections", streamMaxConns)
	}
}

// TestReportBoth: the full bench's summary has the UDP tables, then the
// stream rows; results.json keeps its shape, stream.json is beside it.
func TestReportBoth(t *testing.T) {
	o := options{out: t.TempDir(), callMS: 100, stepDur: 10 * time.Second, streamConns: 10, streamStep: 5 * time.Second, streamIdle: 10000}
	rs := []*result{{Target: "kamailio", CleanCPS: 5000}, {Target: "sipedge", CleanCPS: 8000}}
	srs := []*streamResult{{Target: "kamailio", IdleTCP: &idleRow{Network: "tcp", Wanted: 10000, Open: 10000, PerConnKiB: 20}},
		{Target: "sipedge", IdleTCP: &idleRow{Network: "tcp", Wanted: 10000, Open: 10000, PerConnKiB: 13}}}
	report(o, rs, srs, time.Minute)
	b, err := os.ReadFile(filepath.Join(o.out, "summary.txt"))
	if err != nil {
		t.Fatal(err)
	}
	sum := string(b)
	udp, stream := strings.Index(sum, "clean step CPS"), strings.Index(sum, "TCP and TLS rows")
	if udp < 0 || stream < udp || !strings.Contains(sum, "KiB (Pss) per idle TCP connection") {
		t.Errorf("summary:\n%s", sum)
	}
	var udpRows []map[string]any
	if b, err := os.ReadFile(filepath.Join(o.out, "results.json")); err != nil || json.Unmarshal(b, &udpRows) != nil || len(udpRows) != 2 {
		t.Errorf("results.json: %v, %d rows", err, len(udpRows))
	}
	var streamRows []streamResult
	if b, err := os.ReadFile(filepath.Join(o.out, "stream.json")); err != nil || json.Unmarshal(b, &streamRows) != nil || len(streamRows) != 2 || streamRows[1].IdleTCP.PerConnKiB != 13 {
		t.Errorf("stream.json: %v, %+v", err, streamRows)
	}

	// -stream-only: no UDP tables, no results.json.
	o.out = t.TempDir()
	report(o, nil, srs, time.Minute)
	b, _ = os.ReadFile(filepath.Join(o.out, "summary.txt"))
	if sum := string(b); strings.Contains(sum, "clean step CPS") || !strings.Contains(sum, "TCP and TLS rows only") {
		t.Errorf("stream-only summary:\n%s", sum)
	}
	if _, err := os.Stat(filepath.Join(o.out, "results.json")); err == nil {
		t.Error("stream-only wrote results.json")
	}
}
