package app

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sipedge/sipedge/daemon/resolve"
)

// TestResolvConf: network.dns becomes the image's resolv.conf, read back
// as written; a server with another port than 53 is left out (the file
// has no port) and reported; an empty list names no server; a rewrite
// replaces the file whole.
func TestResolvConf(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	servers := []netip.AddrPort{
		netip.MustParseAddrPort("192.0.2.53:53"),
		netip.MustParseAddrPort("198.51.100.53:5353"),
		netip.MustParseAddrPort("[2001:db8::53]:53"),
	}
	skipped, err := writeResolvConf(path, servers)
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped) != 1 || skipped[0] != servers[1] {
		t.Errorf("skipped %v, want the server on port 5353", skipped)
	}
	// Read back as the Cores' resolver reads a resolv.conf.
	got, err := resolve.ServersFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := []netip.AddrPort{servers[0], servers[2]}; !slices.Equal(got, want) {
		t.Errorf("nameservers %v, want %v", got, want)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("file mode %v (%v), want 0644", fi.Mode(), err)
	}

	if _, err := writeResolvConf(path, nil); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if got, _ := resolve.ServersFromFile(path); len(got) != 0 || !strings.Contains(string(b), "network.dns is empty") {
		t.Errorf("with no network.dns the file names %v:\n%s", got, b)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".resolv.conf-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestResolvConfUnwritable: a directory that cannot take the file is a
// clear error naming it.
func TestResolvConfUnwritable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "resolv.conf")
	if _, err := writeResolvConf(path, []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53")}); err == nil || !strings.Contains(err.Error(), "resolv.conf") {
		t.Errorf("err %v, want a resolv.conf error", err)
	}
}
