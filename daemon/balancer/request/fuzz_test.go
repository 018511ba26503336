package request

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// seedDirs hold the messages the tests and FuzzReadingsAgree start
// from: the balancer's own cases (testdata/requests), RFC 4475 section
// 3 and RFC 5118 section 4 (../testdata/torture, ../testdata/rfc5118).
var seedDirs = []string{"testdata/requests", "../testdata/intake", "../testdata/torture", "../testdata/rfc5118"}

// seeds reads every message file of seedDirs, by name.
func seeds(tb testing.TB) map[string][]byte {
	tb.Helper()
	out := map[string][]byte{}
	for _, dir := range seedDirs {
		files, err := os.ReadDir(dir)
		if err != nil {
			tb.Fatalf("seeds: %v", err)
		}
		for _, f := range files {
			if ext := filepath.Ext(f.Name()); ext != ".sip" && ext != ".dat" {
				continue
			}
			data, err := os.ReadFile(filepath.Join(dir, f.Name()))
			if err != nil {
				tb.Fatal(err)
			}
			out[filepath.Join(filepath.Base(dir), f.Name())] = data
		}
	}
	if len(out) < 16 {
		tb.Fatalf("seeds: only %d message files under %v", len(out), seedDirs)
	}
	return out
}

// testConfig is a balancer listening on 127.0.0.1:5060 and [::1]:5060.
func testConfig() *Config {
	ours := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:5060"), netip.MustParseAddrPort("[::1]:5060")}
	return &Config{
		Local: func(a netip.AddrPort) bool {
			for _, o := range ours {
				if a == o {
					return true
				}
			}
			return false
		},
		MaxHeaders:  128,
		MaxURIBytes: 512,
	}
}

var testSources = [...]netip.AddrPort{
	netip.MustParseAddrPort("127.0.0.2:5070"),
	netip.MustParseAddrPort("[2001:db8::9]:5060"),
}

// FuzzReadingsAgree feeds the same bytes to both backings: whatever the
// raw scan takes, the full path must take too, with the same decisions
// (method, identifiers, Max-Forwards, where responses go, transaction
// key, next hop) and the same message forwarded and answered (compared
// after parsing both: header names, values and order, body), the raw
// forward editing in place where the parsed one renders.
func FuzzReadingsAgree(f *testing.F) {
	for _, data := range seeds(f) {
		f.Add(data, false)
		f.Add(data, true)
	}
	cfg := testConfig()
	parser := NewParser()
	f.Fuzz(func(t *testing.T, data []byte, v6 bool) {
		src := testSources[0]
		if v6 {
			src = testSources[1]
		}
		checkAgree(t, parser, cfg, data, src)
	})
}

// checkAgree is FuzzReadingsAgree's check of one message.
func checkAgree(t *testing.T, parser *sip.Parser, cfg *Config, data []byte, src netip.AddrPort) (scanned bool) {
	t.Helper()
	raw, ok := Scan(bytes.Clone(data), src, cfg)
	if !ok {
		return false // declined: the full path alone reads it
	}
	full, ref := Parse(parser, bytes.Clone(data), src, false, cfg)
	if ref != nil {
		t.Fatalf("the raw scan takes what the full path refuses (%v):\n%q", ref, data)
	}
	type decisions struct {
		Method      sip.RequestMethod
		CallID      string
		CSeq        uint32
		FromTag     string
		ToTag       string
		InDialog    bool
		MaxFwd      int
		HasMaxFwd   bool
		Rport       bool
		ReplyAddr   netip.AddrPort
		Branch      string
		TxKey       string
		Hop         Hop
		Routed      bool
		ResponderOK bool
	}
	read := func(r *Request) decisions {
		d := decisions{Method: r.Method(), CallID: string(r.CallID()), CSeq: r.CSeq(), FromTag: string(r.FromTag()),
			Rport: r.Rport(), ReplyAddr: r.ReplyAddr(), Branch: string(r.Branch()), TxKey: string(r.AppendTxKey(nil)),
			Hop: r.NextHop(), Routed: r.Routed()}
		tag, in := r.ToTag()
		d.ToTag, d.InDialog = string(tag), in
		d.MaxFwd, d.HasMaxFwd = r.MaxForwards()
		_, d.ResponderOK = r.Responder()
		return d
	}
	dr, df := read(&raw), read(&full)
	if dr.Hop.Kind == HopDecline {
		df.Hop = dr.Hop // the raw path leaves the next hop to the full path
	}
	if !reflect.DeepEqual(dr, df) {
		t.Fatalf("decisions differ for\n%q\nraw:  %+v\nfull: %+v", data, dr, df)
	}
	via := Via{Transport: "UDP", Host: "127.0.0.1", Port: 5060}
	rr := "Record-Route: <sip:127.0.0.1:5060;lr>\r\n"
	fr := AppendForward(&raw, nil, via, "z9hG4bKtest", rr)
	ff := AppendForward(&full, nil, via, "z9hG4bKtest", rr)
	if a, b := canonical(t, "raw forward", fr), canonical(t, "full forward", ff); a != b {
		t.Fatalf("forwards differ for\n%q\nraw:\n%s\nfull:\n%s", data, a, b)
	}
	resR, okR := raw.Responder()
	resF, _ := full.Responder()
	if okR {
		a := canonical(t, "raw answer", resR.Response(487, "Request Terminated", ""))
		b := canonical(t, "full answer", resF.Response(487, "Request Terminated", ""))
		if (resR.ToTag == "") != (resF.ToTag == "") || a != b && strings.ReplaceAll(a, resR.ToTag, "TAG") != strings.ReplaceAll(b, resF.ToTag, "TAG") {
			t.Fatalf("our answers differ for\n%q\nraw:\n%s\nfull:\n%s", data, a, b)
		}
	}
	return true
}

// canonical is a message as the full path reads it (NewParser): the start
// line, then one line per header value (canonical name: value), then
// the body.
func canonical(t *testing.T, what string, data []byte) string {
	t.Helper()
	m, err := NewParser().ParseSIP(data)
	if err != nil {
		t.Fatalf("%s does not parse: %v\n%s", what, err, data)
	}
	var b strings.Builder
	var hs []sip.Header
	switch m := m.(type) {
	case *sip.Request:
		b.WriteString(string(m.Method) + " " + m.Recipient.String() + " " + m.SipVersion + "\n")
		hs = m.Headers()
	case *sip.Response:
		b.WriteString(m.StartLine() + "\n")
		hs = m.Headers()
	}
	cl := ""
	for _, h := range hs {
		line := strings.ToLower(h.Name()) + ": " + h.Value() + "\n"
		if _, ok := h.(*sip.ContentLengthHeader); ok {
			cl += line // sipgo adds one where a datagram had none: where it stands says nothing
			continue
		}
		b.WriteString(line)
	}
	b.WriteString(cl + "\n")
	b.Write(m.Body())
	return b.String()
}

// TestReadingsAgreeOnSeeds runs FuzzReadingsAgree's check on every seed
// from both sources, and requires the raw scan to take the messages the
// fast paths exist for.
func TestReadingsAgreeOnSeeds(t *testing.T) {
	cfg, parser := testConfig(), NewParser()
	taken := map[string]bool{}
	for name, data := range seeds(t) {
		for _, src := range testSources {
			t.Run(name+"/"+src.Addr().String(), func(t *testing.T) {
				if checkAgree(t, parser, cfg, data, src) {
					taken[name] = true
				}
			})
		}
	}
	for _, name := range []string{"requests/invite-raw.sip", "requests/bye-raw.sip", "requests/invite-nat.sip",
		"requests/ack-2xx.sip", "requests/bye-sipp-bench.sip", "requests/bye-ipv6-own-route.sip", "requests/ack-ipv6-routes.sip", "requests/bye-ipv6-to-us.sip"} {
		if !taken[name] {
			t.Errorf("%s: the raw scan declined it", name)
		}
	}
}
