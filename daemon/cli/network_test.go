package cli

import (
	"strings"
	"testing"

	"github.com/sipedge/sipedge/daemon/app"
)

func TestFormatNetwork(t *testing.T) {
	st := app.NetworkStatus{
		Bonds: []app.BondView{{Name: "bond0", Mode: "active-backup", MIIMon: "100ms", Up: true, ActiveSlave: "eth1",
			Slaves: []app.SlaveView{{Name: "eth0", MIIUp: false}, {Name: "eth1", MIIUp: true, Active: true}}}},
		Links:         []app.LinkView{{Name: "bond0", AdminUp: true, OperUp: true, MTU: 1500, MAC: "52:54:00:5e:00:01"}, {Name: "eth0", AdminUp: true, MTU: 1500}},
		Management:    &app.ManagementView{Interface: "bond0", Address: "192.0.2.11/24", Gateway: "192.0.2.1", Source: "configuration", Pending: &app.PendingManagement{Interface: "bond0", Address: "192.0.2.12/24", Note: "stored; takes effect at the next daemon start (restart or reboot)"}},
		DefaultRoutes: []app.RouteView{{Interface: "bond0", Gateway: "192.0.2.1"}},
	}
	wd := &app.WatchdogView{Device: "/dev/watchdog", Armed: true, Timeout: "10s", Keepalives: 42, LastKeepaliveAgo: "310ms", LastResetByWatchdog: true}
	tests := []struct {
		name string
		st   app.NetworkStatus
		wd   *app.WatchdogView
		want []string
	}{
		{"full", st, wd, []string{
			"bond0  active-backup  100ms   up     eth1    eth0 mii down, eth1 mii up (active)",
			"eth0   up     down  1500",
			"management  192.0.2.11/24 on bond0 via 192.0.2.1 (from the configuration)",
			"  pending: 192.0.2.12/24 on bond0, stored; takes effect at the next daemon start",
			"default     via 192.0.2.1 dev bond0",
			"watchdog    /dev/watchdog armed, timeout 10s, last keepalive 310ms ago (42 in all)",
			"last reset by the watchdog: yes",
		}},
		{"bare", app.NetworkStatus{Errors: []string{"hal: not supported"}}, &app.WatchdogView{}, []string{
			"no bonds configured", "management  not configured", "default     none", "error       hal: not supported", "watchdog    none configured",
		}},
		{"stale", app.NetworkStatus{}, &app.WatchdogView{Device: "/dev/watchdog", Armed: true, Withholding: true, Stale: []string{"balancer"}}, []string{
			"WITHHOLDING keepalives, stale: balancer", "last reset by the watchdog: no",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := FormatNetwork(tt.st, tt.wd)
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("missing %q in:\n%s", w, out)
				}
			}
		})
	}
	if _, _, ok := findCtl([]string{"network"}); !ok {
		t.Error("ctl network is not registered")
	}
}
