package hal

import (
	"errors"
	"net/netip"
	"testing"
)

func TestFakeDefaultRoute(t *testing.T) {
	f := NewFake("bond0", "eth2")
	f.SetLinkUp("bond0", true)
	f.AddAddress("bond0", netip.MustParsePrefix("192.0.2.11/24"))
	f.AddAddress("bond0", netip.MustParsePrefix("2001:db8::11/64"))
	tests := []struct {
		name, ifname, gw string
		wantErr          error
		want             []Route
	}{
		{"down link", "eth2", "192.0.2.1", ErrNetUnreachable, nil},
		{"off-link", "bond0", "198.51.100.1", ErrNetUnreachable, nil},
		{"set v4", "bond0", "192.0.2.1", nil, []Route{{"bond0", netip.MustParseAddr("192.0.2.1")}}},
		{"replace v4", "bond0", "192.0.2.254", nil, []Route{{"bond0", netip.MustParseAddr("192.0.2.254")}}},
		{"v6 beside v4", "bond0", "2001:db8::1", nil, []Route{{"bond0", netip.MustParseAddr("192.0.2.254")}, {"bond0", netip.MustParseAddr("2001:db8::1")}}},
	}
	for _, tt := range tests {
		err := f.SetDefaultRoute(tt.ifname, netip.MustParseAddr(tt.gw))
		if tt.wantErr != nil && !errors.Is(err, tt.wantErr) || tt.wantErr == nil && err != nil {
			t.Fatalf("%s: err %v, want %v", tt.name, err, tt.wantErr)
		}
		if tt.want == nil {
			continue
		}
		got, _ := f.DefaultRoutes()
		if len(got) != len(tt.want) {
			t.Fatalf("%s: routes %v, want %v", tt.name, got, tt.want)
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Fatalf("%s: routes %v, want %v", tt.name, got, tt.want)
			}
		}
	}
	f.DelDefaultRoute(false)
	if got, _ := f.DefaultRoutes(); len(got) != 1 || !got[0].Gateway.Is6() {
		t.Fatalf("after deleting v4: %v", got)
	}
	if l, _ := f.ListLinks(); len(l) != 2 || l[0].Name != "bond0" || !l[0].OperUp || l[1].Name != "eth2" || l[1].OperUp {
		t.Fatalf("ListLinks = %+v", l)
	}
}
