package failover

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sipedge/sipedge/hal/testenv"
)

// placementLab is two boxes, either on one bridge, or each on its own
// bridge with a router namespace between them (the pair split across two
// sites: heartbeats pass, gratuitous ARP does not). Namespaces k18*,
// addresses 192.0.2.96/27 and 198.51.100.96/27.
type placementLab struct {
	*lab
	aAddr, bAddr string // the boxes' own addresses
}

func newPlacementLab(t *testing.T, split bool) *placementLab {
	l := newNamespaces(t, "k18p")
	pl := &placementLab{lab: l, aAddr: "192.0.2.97", bAddr: "192.0.2.98"}
	bridges := []string{"br0", "br0"}
	if split {
		pl.bAddr = "198.51.100.98"
		bridges[1] = "br1"
	}
	for _, br := range []string{"br0", "br1"} {
		run(t, "ip", "-n", l.br, "link", "add", br, "type", "bridge")
		run(t, "ip", "-n", l.br, "link", "set", br, "up")
	}
	veth := func(port, br, ns, ifname, addr string) {
		run(t, "ip", "-n", l.br, "link", "add", port, "type", "veth", "peer", "name", ifname, "netns", ns)
		run(t, "ip", "-n", l.br, "link", "set", port, "master", br, "up")
		run(t, "ip", "-n", ns, "addr", "add", addr, "dev", ifname)
		run(t, "ip", "-n", ns, "link", "set", ifname, "up")
	}
	veth("pa", bridges[0], l.a, "eth0", pl.aAddr+"/27")
	veth("pb", bridges[1], l.b, "eth0", pl.bAddr+"/27")
	if split {
		// The router (namespace c) joins the two sites.
		veth("pr0", "br0", l.c, "eth0", "192.0.2.126/27")
		veth("pr1", "br1", l.c, "eth1", "198.51.100.126/27")
		run(t, "ip", "netns", "exec", l.c, "sysctl", "-qw", "net.ipv4.ip_forward=1")
		run(t, "ip", "-n", l.a, "route", "add", "default", "via", "192.0.2.126")
		run(t, "ip", "-n", l.b, "route", "add", "default", "via", "198.51.100.126")
	}
	return pl
}

// startPair starts box A (main) and B (backup) with their services and
// waits for A to hold the VIP and B to hear it.
func (l *placementLab) startPair() (a, b *box) {
	l.services(l.a, "A")
	l.services(l.b, "B")
	a = &box{name: "a", ns: l.a, cfg: l.config("a", l.aAddr, l.bAddr, "main", 150)}
	b = &box{name: "b", ns: l.b, cfg: l.config("b", l.bAddr, l.aAddr, "backup", 100)}
	l.start(a)
	l.start(b)
	l.waitState(a, "master", 10*time.Second)
	l.waitState(b, "backup", 10*time.Second) // across the router too: heartbeats pass
	return a, b
}

func (l *placementLab) config(name, self, peer, role string, prio int) string {
	data := filepath.Join(l.dir, name)
	if err := os.MkdirAll(data, 0o755); err != nil {
		l.t.Fatal(err)
	}
	cfg := fmt.Sprintf(`node: {name: %s, profile: four-box, platform: generic-x86_64, data_dir: %s}
log: {level: debug}
cluster: {listen: "%s:694", peer: "%s:694", key_file: %s, interval: 100ms}
vips:
  - name: db
    address: 192.0.2.110/27
    interface: eth0
    role: %s
    priority: %d
    deadtime: 1s
    initdead: 2s
    failback: {enabled: false}
    garp: {count: 3, repeat_after: 1s}
    track: [{tcp: "127.0.0.1:3306"}]
`, name, data, self, peer, l.key, role, prio)
	p := filepath.Join(l.dir, name+".yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		l.t.Fatal(err)
	}
	return p
}

func (l *lab) ctlJSON(b *box, v any, args ...string) {
	l.t.Helper()
	out, err := exec.Command(sipedgeBinary(l.t), append([]string{"ctl", "-config", b.cfg, "-json"}, args...)...).Output()
	if err != nil {
		l.t.Fatalf("ctl %v on %s: %v\n%s", args, b.name, err, out)
	}
	if err := json.Unmarshal(out, v); err != nil {
		l.t.Fatalf("ctl %v: %v: %s", args, err, out)
	}
}

// placement waits until b's db group has a placement result and returns
// it with b's alarm ids.
func (l *lab) placement(b *box) (*PlacementInfo, []string) {
	l.t.Helper()
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		st := l.vip(b)
		if len(st.Groups) == 0 || st.Groups[0].Placement == nil {
			continue
		}
		var s struct {
			Alarms []struct {
				ID, Message string
			} `json:"alarms"`
		}
		l.ctlJSON(b, &s, "status")
		var ids []string
		for _, a := range s.Alarms {
			ids = append(ids, a.ID)
		}
		return st.Groups[0].Placement, ids
	}
	l.t.Fatalf("%s: no placement check after 20 s; log:\n%s", b.name, l.tail(b))
	return nil, nil
}

// TestNetnsPlacement (issue 18 item 2): real daemons in namespaces.
// On one bridge: no warning at start, nor after a handover (each box
// hears the other's gratuitous ARP). On two bridges joined by a router
// (heartbeats pass, ARP does not): both boxes warn, with an alarm.
func TestNetnsPlacement(t *testing.T) {
	testenv.MustHaveNetns(t)
	testenv.Short(t, "runs two daemons in namespaces")
	t.Run("one-segment", func(t *testing.T) {
		l := newPlacementLab(t, false)
		a, b := l.startPair()
		for _, x := range []*box{a, b} {
			p, alarms := l.placement(x)
			if !p.OK || p.PeerMAC == "" {
				t.Errorf("%s: placement %+v, want ok with the peer's MAC", x.name, p)
			}
			if strings.Contains(strings.Join(alarms, " "), "vip.placement") {
				t.Errorf("%s: alarms %v", x.name, alarms)
			}
		}
		// Hand the VIP to B: A must hear B's gratuitous ARP.
		var st Status
		l.ctlJSON(a, &st, "vip", "release", "db")
		l.waitState(b, "master", 10*time.Second)
		time.Sleep(placementGARPGrace + 500*time.Millisecond)
		l.ctlJSON(a, &st, "vip", "check")
		if p := st.Groups[0].Placement; p == nil || !p.OK || p.PeerGARP == nil {
			t.Errorf("A after B took the VIP: placement %+v, want ok with B's GARP heard", p)
		}
	})
	t.Run("two-segments", func(t *testing.T) {
		l := newPlacementLab(t, true)
		a, b := l.startPair()
		wants := map[*box][]string{
			a: {"the peer has no known address in the VIP's subnet 192.0.2.96/27"},
			b: {"this box has no address of its own in the VIP's subnet 192.0.2.96/27 on eth0", "the peer 192.0.2.97 does not answer ARP on eth0 (hal: arp probe 192.0.2.97 on eth0: no ARP answer) though its heartbeats arrive"},
		}
		for x, want := range wants {
			p, alarms := l.placement(x)
			got := strings.Join(p.Findings, "\n")
			if p.OK {
				t.Errorf("%s: placement ok across a router", x.name)
			}
			for _, w := range want {
				if !strings.Contains(got, w) {
					t.Errorf("%s: findings\n%s\nwant %q", x.name, got, w)
				}
			}
			if !strings.Contains(strings.Join(alarms, " "), "vip.placement.db") {
				t.Errorf("%s: alarms %v, want vip.placement.db", x.name, alarms)
			}
			out, _ := exec.Command(sipedgeBinary(t), "ctl", "-config", x.cfg, "vip").CombinedOutput()
			if !strings.Contains(string(out), "placement: WARNING") {
				t.Errorf("%s: ctl vip does not show the warning:\n%s", x.name, out)
			}
		}
		// Not tested here: B's gratuitous ARP not heard by A after B takes
		// the VIP. Measured: once B holds 192.0.2.110/27, its route to
		// that /27 sends its heartbeats to A out of eth0, where A is not,
		// so A stops hearing B and takes the VIP back within the
		// deadtime (split brain): the failure this check warns about.
		// TestPlacementGARP covers the finding.
	})
}
