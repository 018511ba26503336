package edge

import (
	"net/netip"
	"testing"
)

// FuzzScreen feeds raw bytes from the wire to the screen (start-line and
// header scan for the User-Agent): no panic, and a trusted source always
// passes.
func FuzzScreen(f *testing.F) {
	f.Add([]byte(req("INVITE", "friendly-scanner")), false)
	f.Add([]byte(req("OPTIONS", "")), true)
	f.Add([]byte("SIP/2.0 200 OK\r\n\r\n"), false)
	f.Add([]byte("X\nUser-Agent:"), false)
	g, err := New(Options{FloodRequests: 1 << 20, Untrusted: Refuse, Scanners: []string{"friendly-scanner", "sipcli", "x"},
		Trusted: []Rule{rule("", "198.51.100.0/24")}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, tcp bool) {
		tp := "udp"
		if tcp {
			tp = "tcp"
		}
		v := g.Screen(netip.MustParseAddrPort("203.0.113.5:5060"), tp, data)
		if v.Action == Reject && v.Code != 403 {
			t.Fatalf("verdict %+v", v)
		}
		if v := g.Screen(netip.MustParseAddrPort("198.51.100.5:5060"), tp, data); v != trusted {
			t.Fatalf("trusted source screened: %+v", v)
		}
	})
}
