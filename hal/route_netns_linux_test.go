package hal

import (
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const routeChildEnv = "SIPEDGE_HAL_ROUTE_NETNS_CHILD"

// TestRoutesInNetns checks the default route and the link list of the
// Linux implementation inside a namespace holding one veth pair, reading
// the routes back both through the HAL and with iproute2.
func TestRoutesInNetns(t *testing.T) {
	runChildInNetns(t, "sert", "ra", "rb", "TestRoutesNetnsChild", routeChildEnv)
}

// ipDefault is `ip -4 route show default` in the current namespace.
func ipDefault(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ip", "-4", "route", "show", "default").CombinedOutput()
	if err != nil {
		t.Fatalf("ip route: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestRoutesNetnsChild runs inside the namespace; skipped otherwise.
func TestRoutesNetnsChild(t *testing.T) {
	if os.Getenv(routeChildEnv) != "1" {
		t.Skip("run by TestRoutesInNetns")
	}
	n, err := OpenNetwork()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	links, err := n.ListLinks()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Name)
	}
	if !slices.Equal(names, []string{"lo", "ra", "rb"}) {
		t.Fatalf("ListLinks: %v", names)
	}
	if rs, err := n.DefaultRoutes(); err != nil || len(rs) != 0 {
		t.Fatalf("fresh namespace default routes %v, %v", rs, err)
	}
	// Down, no address: the kernel refuses, and says so.
	gw := netip.MustParseAddr("192.0.2.1")
	if err := n.SetDefaultRoute("ra", gw); !errors.Is(err, unix.ENETUNREACH) && !errors.Is(err, unix.ENETDOWN) {
		t.Fatalf("route on a down link without address: %v", err)
	}
	if err := n.SetDefaultRoute("nosuch0", gw); err == nil {
		t.Fatal("route via a missing interface accepted")
	}
	for _, ifn := range []string{"ra", "rb"} {
		if err := n.SetLinkUp(ifn, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.AddAddress("ra", netip.MustParsePrefix("192.0.2.11/24")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ra oper up", func() bool { st, _ := n.Link("ra"); return st.OperUp })

	tests := []struct {
		name    string
		ifname  string
		gw      string
		wantErr bool
		want    string // ip route show default
	}{
		{"set", "ra", "192.0.2.1", false, "default via 192.0.2.1 dev ra proto static"},
		{"again is idempotent", "ra", "192.0.2.1", false, "default via 192.0.2.1 dev ra proto static"},
		{"replaced", "ra", "192.0.2.254", false, "default via 192.0.2.254 dev ra proto static"},
		{"off-link gateway refused, old kept", "ra", "198.51.100.1", true, "default via 192.0.2.254 dev ra proto static"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := netip.MustParseAddr(tt.gw)
			err := n.SetDefaultRoute(tt.ifname, gw)
			if (err != nil) != tt.wantErr {
				t.Fatalf("SetDefaultRoute(%s, %s) = %v", tt.ifname, gw, err)
			}
			if got := ipDefault(t); !strings.HasPrefix(got, tt.want) || strings.Count(got, "default") != 1 {
				t.Fatalf("ip route show default: %q, want %q", got, tt.want)
			}
			rs, err := n.DefaultRoutes()
			if err != nil {
				t.Fatal(err)
			}
			want := strings.Fields(tt.want)[2]
			if len(rs) != 1 || rs[0].Interface != "ra" || rs[0].Gateway.String() != want {
				t.Fatalf("DefaultRoutes = %+v, want via %s dev ra", rs, want)
			}
		})
	}
	if err := n.DelDefaultRoute(false); err != nil {
		t.Fatal(err)
	}
	if err := n.DelDefaultRoute(false); err != nil {
		t.Fatalf("deleting a missing default route: %v", err)
	}
	if got := ipDefault(t); got != "" {
		t.Fatalf("after delete: %q", got)
	}
	if rs, _ := n.DefaultRoutes(); len(rs) != 0 {
		t.Fatalf("after delete DefaultRoutes = %v", rs)
	}
}
