package platform

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLookupAll(t *testing.T) {
	names := Names()
	for _, want := range []string{"generic-x86_64", "qemu-x86_64"} {
		if !slices.Contains(names, want) {
			t.Fatalf("Names() = %v, missing %s", names, want)
		}
	}
	for _, n := range names {
		p, err := Lookup(n)
		if err != nil {
			t.Fatalf("Lookup(%s): %v", n, err)
		}
		if p.Name != n {
			t.Errorf("profile %s names itself %s", n, p.Name)
		}
		// The ordering rules every board must keep.
		before := [][2]string{{"watchdog", "i6300esb"}, {"i6300esb", "softdog"}, {"watchdog", "softdog"}, {"tls", "bonding"}}
		for _, b := range before {
			i, j := p.ModuleIndex(b[0]), p.ModuleIndex(b[1])
			if i >= 0 && j >= 0 && i > j {
				t.Errorf("%s: %s must load before %s", n, b[0], b[1])
			}
		}
		if j := p.ModuleIndex("bonding"); j >= 0 {
			if !strings.Contains(p.Modules[j].Params, "max_bonds=0") {
				t.Errorf("%s: bonding must load with max_bonds=0, has %q", n, p.Modules[j].Params)
			}
			if p.ModuleIndex("tls") < 0 {
				t.Errorf("%s: bonding without tls", n)
			}
		}
		if !strings.Contains(p.KernelCmdline, "panic=") || KernelConsole(p.KernelCmdline) != p.LogDevice() {
			t.Errorf("%s: kernel command line %q lacks panic= or does not end on the log device %s", n, p.KernelCmdline, p.LogDevice())
		}
	}
}

func TestQEMUProfile(t *testing.T) {
	p, err := Lookup("qemu-x86_64")
	if err != nil {
		t.Fatal(err)
	}
	if p.Watchdog.Device != "/dev/watchdog" || p.Watchdog.Timeout.D() != 10*time.Second || p.Watchdog.Driver != "i6300esb" {
		t.Errorf("watchdog = %+v", p.Watchdog)
	}
	if p.Console.Device != "ttyS0" || p.Console.Baud != 115200 {
		t.Errorf("console = %+v", p.Console)
	}
	// The menu has its UART to itself: the log is on the second one.
	if p.LogDevice() != "ttyS1" || KernelConsole(p.KernelCmdline) != "ttyS1" {
		t.Errorf("log = %q, kernel console %q", p.LogDevice(), KernelConsole(p.KernelCmdline))
	}
	// eth2 and eth3 are not in the default bond: the image's config bonds
	// them as bond1 (802.3ad).
	if !slices.Equal(p.NICs, []string{"eth0", "eth1", "eth2", "eth3"}) {
		t.Errorf("nics = %v", p.NICs)
	}
	if len(p.Bonds) != 1 || p.Bonds[0].Name != "bond0" || !slices.Equal(p.Bonds[0].Slaves, []string{"eth0", "eth1"}) || p.Bonds[0].MIIMon.D() != 100*time.Millisecond {
		t.Errorf("bonds = %+v", p.Bonds)
	}
	if p.ModuleIndex("e1000") < 0 || p.ModuleIndex("i6300esb") < 0 {
		t.Errorf("modules = %+v", p.Modules)
	}
}

func TestLookupErrors(t *testing.T) {
	for _, n := range []string{"", "nosuch", "../platform", "qemu-x86_64.yaml"} {
		if _, err := Lookup(n); err == nil {
			t.Errorf("Lookup(%q) succeeded", n)
		}
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct{ file, want string }{
		{"bad-primary.yaml", "primary eth2 is not a slave"},
		{"bad-mode.yaml", "balance-rr"},
		{"bad-dup.yaml", "listed twice"},
		{"bad-field.yaml", "modulez"},
		{"bad-watchdog.yaml", "below 1s"},
		{"bad-log.yaml", "makes ttyS0 the kernel console"},
	}
	for _, tt := range tests {
		b, err := os.ReadFile(filepath.Join("testdata", tt.file))
		if err != nil {
			t.Fatal(err)
		}
		_, err = Parse(tt.file, b)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tt.file, err, tt.want)
		}
	}
}

func TestKernelConsole(t *testing.T) {
	tests := []struct{ cmdline, want string }{
		{"", ""},
		{"panic=5 quiet", ""},
		{"console=ttyS0,115200 panic=5", "ttyS0"},
		{"console=ttyS0,115200 console=tty0 panic=5", "tty0"},
		{"console=tty0 console=ttyS1,115200n8", "ttyS1"},
	}
	for _, tt := range tests {
		if got := KernelConsole(tt.cmdline); got != tt.want {
			t.Errorf("KernelConsole(%q) = %q, want %q", tt.cmdline, got, tt.want)
		}
	}
}

func TestCheckOrder(t *testing.T) {
	deps := map[string][]string{
		"watchdog": nil, "i6300esb": {"watchdog"}, "softdog": {"watchdog"},
		"tls": nil, "bonding": {"tls"}, "e1000": nil,
		"virtio_net": {"net_failover"}, "net_failover": {"failover"}, "failover": nil,
	}
	dep := func(n string) ([]string, error) {
		d, ok := deps[n]
		if !ok {
			return nil, errors.New("no such module")
		}
		return d, nil
	}
	mods := func(names ...string) []Module {
		var m []Module
		for _, n := range names {
			opt := strings.HasSuffix(n, "?")
			m = append(m, Module{Name: strings.TrimSuffix(n, "?"), Optional: opt})
		}
		return m
	}
	tests := []struct {
		name    string
		modules []Module
		wantErr string
	}{
		{"good", mods("watchdog", "i6300esb", "softdog", "tls", "bonding", "e1000"), ""},
		{"bonding before tls", mods("bonding", "tls"), "tls, which is loaded after it"},
		{"missing dep", mods("i6300esb"), "watchdog, which is not in the list"},
		{"virtio chain", mods("failover", "net_failover", "virtio_net"), ""},
		{"absent optional", mods("nosuch?", "tls"), ""},
		{"absent required", mods("nosuch"), "no such module"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Profile{Name: "t", Modules: tt.modules}
			err := p.CheckOrder(dep, nil)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
