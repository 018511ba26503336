package app

import (
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/config"
	"github.com/sipedge/sipedge/daemon/store"
	"github.com/sipedge/sipedge/hal"
)

// testApp is the part of an App the network subsystem uses: config,
// store, events and a log.
func testApp(t *testing.T, cfg *config.Config) *App {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := &App{log: slog.New(slog.DiscardHandler), store: st, status: map[string]func() any{}}
	a.events = store.NewRecorder(nil, a.log)
	a.cfg.Store(cfg)
	return a
}

func TestApplyManagement(t *testing.T) {
	pfx := netip.MustParsePrefix
	ip := netip.MustParseAddr
	file := &config.Management{Interface: "bond0", Address: pfx("192.0.2.11/24"), Gateway: ip("192.0.2.1")}
	tests := []struct {
		name      string
		file      *config.Management
		runtime   *Management
		prev      *Management // applied by an earlier start
		webListen string
		// want: addresses on bond0 and eth2, the default route, source
		bond0, eth2 []string
		route       string
		source      string
		errLike     string
	}{
		{name: "file", file: file, bond0: []string{"192.0.2.11/24"}, route: "bond0 192.0.2.1", source: "configuration"},
		{name: "runtime gateway", file: file, runtime: &Management{Address: pfx("192.0.2.11/24"), Gateway: ip("192.0.2.254")},
			bond0: []string{"192.0.2.11/24"}, route: "bond0 192.0.2.254", source: "runtime"},
		{name: "runtime address replaces the file's", file: file, runtime: &Management{Interface: "bond0", Address: pfx("192.0.2.21/24"), Gateway: ip("192.0.2.1")},
			prev: &Management{Interface: "bond0", Address: pfx("192.0.2.11/24")}, bond0: []string{"192.0.2.21/24"}, route: "bond0 192.0.2.1", source: "runtime"},
		{name: "file's kept while web listens on it", file: file, runtime: &Management{Interface: "bond0", Address: pfx("192.0.2.21/24")}, webListen: "192.0.2.11:8080",
			bond0: []string{"192.0.2.21/24", "192.0.2.11/24"}, source: "runtime"},
		{name: "runtime on another interface, earlier one removed", file: file, runtime: &Management{Interface: "eth2", Address: pfx("198.51.100.11/24"), Gateway: ip("198.51.100.1")},
			prev: &Management{Interface: "bond0", Address: pfx("192.0.2.31/24")}, eth2: []string{"198.51.100.11/24"}, route: "eth2 198.51.100.1", source: "runtime"},
		{name: "broken runtime falls back to the file", file: file, runtime: &Management{Interface: "eth9", Address: pfx("192.0.2.41/24")},
			bond0: []string{"192.0.2.11/24"}, route: "bond0 192.0.2.1", source: "configuration", errLike: "not applied"},
		{name: "off-link gateway is reported, not fatal", file: &config.Management{Interface: "bond0", Address: pfx("192.0.2.11/24"), Gateway: ip("198.51.100.1")},
			bond0: []string{"192.0.2.11/24"}, source: "configuration", errLike: "gateway: "},
		{name: "runtime change alone", runtime: &Management{Interface: "eth2", Address: pfx("198.51.100.11/24")}, eth2: []string{"198.51.100.11/24"}, source: "runtime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Network.Management = tt.file
			cfg.Web.Listen = tt.webListen
			a := testApp(t, cfg)
			f := hal.NewFake("bond0", "eth2")
			if tt.prev != nil {
				f.AddAddress(tt.prev.Interface, tt.prev.Address)
				a.store.Put(store.State, keyManagementApplied, tt.prev)
			}
			if tt.runtime != nil {
				tt.runtime.Set = time.Now()
				a.store.Put(store.Runtime, keyManagement, tt.runtime)
			}
			ns := &netState{a: a, hal: f}
			if err := ns.applyManagement(tt.file, tt.runtime); err != nil {
				t.Fatal(err)
			}
			for ifn, want := range map[string][]string{"bond0": tt.bond0, "eth2": tt.eth2} {
				got, _ := f.Addresses(ifn)
				var gs []string
				for _, p := range got {
					gs = append(gs, p.String())
				}
				if strings.Join(gs, ",") != strings.Join(want, ",") {
					t.Errorf("%s has %v, want %v", ifn, gs, want)
				}
			}
			rs, _ := f.DefaultRoutes()
			var route string
			if len(rs) == 1 {
				route = rs[0].Interface + " " + rs[0].Gateway.String()
			}
			if route != tt.route || len(rs) > 1 {
				t.Errorf("default routes %v, want %q", rs, tt.route)
			}
			st := ns.status()
			if st.Management == nil || st.Management.Source != tt.source {
				t.Fatalf("status management %+v, want source %s", st.Management, tt.source)
			}
			if tt.errLike == "" && st.Management.Error != "" || !strings.Contains(st.Management.Error, tt.errLike) {
				t.Errorf("status error %q, want %q", st.Management.Error, tt.errLike)
			}
			// In force means not pending; a failed runtime change stays pending.
			if pending := st.Management.Pending != nil; pending != (tt.runtime != nil && tt.source != "runtime") {
				t.Errorf("pending = %+v", st.Management.Pending)
			}
		})
	}
}

func TestManagementPendingAfterStart(t *testing.T) {
	cfg := config.Default()
	file := &config.Management{Interface: "bond0", Address: netip.MustParsePrefix("192.0.2.11/24"), Gateway: netip.MustParseAddr("192.0.2.1")}
	cfg.Network.Management = file
	a := testApp(t, cfg)
	f := hal.NewFake("bond0")
	ns := &netState{a: a, hal: f}
	if err := ns.applyManagement(file, nil); err != nil {
		t.Fatal(err)
	}
	if p := ns.status().Management.Pending; p != nil {
		t.Fatalf("pending before any change: %+v", p)
	}
	// management.set while running: stored, shown pending, not applied.
	a.store.Put(store.Runtime, keyManagement, Management{Interface: "bond0", Address: netip.MustParsePrefix("192.0.2.11/24"), Gateway: netip.MustParseAddr("192.0.2.254"), Set: time.Now()})
	st := ns.status()
	if p := st.Management.Pending; p == nil || p.Gateway != "192.0.2.254" || !strings.Contains(p.Note, "next daemon start") {
		t.Fatalf("pending = %+v", p)
	}
	if len(st.DefaultRoutes) != 1 || st.DefaultRoutes[0].Gateway != "192.0.2.1" {
		t.Fatalf("routes changed before the restart: %+v", st.DefaultRoutes)
	}
}

func TestListenersOn(t *testing.T) {
	cfg := config.Default()
	cfg.Web.Listen = "192.0.2.11:8080"
	if cfg.SIP != nil {
		cfg.SIP.Listen = []string{"udp:192.0.2.11:5060", "tcp:[2001:db8::11]:5060"}
	}
	got := listenersOn(cfg, netip.MustParseAddr("192.0.2.11"))
	want := "web.listen"
	if cfg.SIP != nil {
		want += ",sip.listen"
	}
	if strings.Join(got, ",") != want {
		t.Errorf("listeners on 192.0.2.11: %v, want %s", got, want)
	}
	if got := listenersOn(cfg, netip.MustParseAddr("192.0.2.12")); len(got) != 0 {
		t.Errorf("listeners on 192.0.2.12: %v", got)
	}
}
