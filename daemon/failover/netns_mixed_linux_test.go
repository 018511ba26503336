package failover

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/internal/daemontest"
	"github.com/sipedge/sipedge/hal/testenv"
)

// TestNetnsMixedVersions: a pair is updated one box at a time, so a box
// of this release must pair with one of the previous release
// (daemontest.PreviousRelease, built from the history) in both roles.
// Two real daemons in network namespaces, a client probing the VIP:
//
//  1. main on the previous release, backup updated: one holder, the
//     backup sees a "previous-release" peer; a clean stop of the old
//     main hands over, its return fails back; kill -9 of the old main,
//     takeover by the new backup, failback;
//  2. main updated too, backup back on the previous release: the same
//     the other way round;
//  3. both updated: sessions proven on both sides.
//
// No heartbeat of a valid peer is rejected (stale, replayed, bad_mac,
// malformed, version) on either side, and the two boxes never hold the
// VIP at once (ip monitor in both).
func TestNetnsMixedVersions(t *testing.T) {
	l, prev := mixedLab(t, "se15c")
	l.services(l.a, "A")
	l.services(l.b, "B")
	monA, monB := l.monitor(l.a), l.monitor(l.b)
	time.Sleep(200 * time.Millisecond) // monitors subscribed
	p := l.probe()
	defer p.close()

	cfgA := l.config("edge-a", "192.0.2.11", "192.0.2.12", "main", 150)
	cfgB := l.config("edge-b", "192.0.2.12", "192.0.2.11", "backup", 100)
	A := &box{name: "edge-a", ns: l.a, cfg: cfgA, bin: prev}
	B := &box{name: "edge-b", ns: l.b, cfg: cfgB}

	// clean checks that neither box rejected a heartbeat of its peer
	// (the counters start at each daemon's start).
	clean := func(what string) {
		t.Helper()
		for _, b := range []*box{A, B} {
			r := l.vip(b).Rejected
			if n := r[RejectStale] + r[RejectReplayed] + r[RejectBadMAC] + r[RejectMalformed] + r[RejectVersion]; n != 0 {
				t.Errorf("%s: %s (%s) rejected its peer's heartbeats: %v", what, b.name, binName(b, prev), r)
			}
		}
	}
	session := func(b *box, want string) {
		t.Helper()
		st := l.vip(b)
		if len(st.Groups) == 0 || len(st.Groups[0].Peers) != 1 || st.Groups[0].Peers[0].Session != want {
			t.Errorf("%s sees its peer as %+v, want session %q", b.name, st.Groups, want)
		}
	}
	// cycle: the holder A stops cleanly (B takes over at once), comes
	// back (fails back), is killed (B takes over at the deadtime; the
	// harness removes A's VIP as PID 1 does), comes back again.
	cycle := func(what string) {
		t.Helper()
		stopAt := time.Now()
		l.stop(A, syscall.SIGTERM)
		l.waitState(B, "master", 3*time.Second)
		t.Logf("%s: clean stop of A, B answers %v after", what, p.firstAnswer(stopAt, "B").Sub(stopAt).Round(time.Millisecond))
		l.start(A)
		l.waitState(A, "master", 10*time.Second)
		l.waitState(B, "backup", 3*time.Second)
		killAt := time.Now()
		l.stop(A, syscall.SIGKILL)
		run(t, "ip", "-n", l.a, "addr", "del", nsVIP+"/24", "dev", "eth0")
		l.waitState(B, "master", 8*time.Second)
		t.Logf("%s: kill -9 of A, B answers %v after", what, p.firstAnswer(killAt, "B").Sub(killAt).Round(time.Millisecond))
		l.start(A)
		l.waitState(A, "master", 10*time.Second)
		l.waitState(B, "backup", 3*time.Second)
		time.Sleep(500 * time.Millisecond)
		clean(what)
	}

	// pairUp starts both boxes, checks them and runs a cycle.
	pairUp := func(what string, newBox *box) {
		t.Helper()
		l.start(A)
		l.start(B)
		l.waitState(A, "master", 15*time.Second)
		l.waitState(B, "backup", 5*time.Second)
		session(newBox, SessionPrevious)
		// The new box shows its previous-release peer in ctl pair: its
		// groups from its heartbeats, no summary (it sends none), while
		// the old box skips the summary the new one sends (clean).
		if v := l.pair(newBox); len(v.Boxes) != 2 || !v.Boxes[1].Reachable || v.Boxes[1].Summary != nil ||
			len(v.Boxes[1].Groups) != 1 || v.Boxes[1].Groups[0].State == "" {
			t.Errorf("%s: ctl pair on the new box %s: %+v", what, newBox.name, v.Boxes)
		}
		clean(what)
		cycle(what)
		session(newBox, SessionPrevious)
	}

	// 1. A previous release (main), B updated (backup).
	pairUp("1: A previous, B new", B)

	// 2. A updated, B back on the previous release.
	l.stop(B, syscall.SIGTERM)
	A.bin, B.bin = "", prev
	l.stop(A, syscall.SIGTERM) // A's VIP is released; nobody holds it until A is back
	pairUp("2: A new, B previous", A)

	// 3. Both updated: B restarts on the new release.
	l.stop(B, syscall.SIGTERM)
	B.bin = ""
	l.start(B)
	l.waitState(B, "backup", 5*time.Second)
	time.Sleep(500 * time.Millisecond)
	session(A, SessionProven)
	session(B, SessionProven)
	for _, b := range []*box{A, B} {
		if v := l.pair(b); len(v.Boxes) != 2 || v.Boxes[1].Summary == nil {
			t.Errorf("3: both new: ctl pair on %s has no summary of its peer: %+v", b.name, v.Boxes)
		}
	}
	clean("3: both new")
	if sa := l.state(A); sa != "master" {
		t.Errorf("A %s at the end, want master", sa)
	}

	if d, n, _ := overlap(monA.snapshot(), monB.snapshot(), time.Now()); n != 0 {
		t.Errorf("both boxes held the VIP %d times, %v in all", n, d)
	}
	if t.Failed() {
		t.Logf("ip monitor:\n%s", l.timeline(monA, monB))
		t.Logf("state changes:\n%s", l.changes(A, B))
	}
}

// mixedLab builds both binaries and a lab whose namespaces start with
// prefix. Compatibility, not speed, is tested with it: the deadtime is
// one a host stall (measured: 0.4 s with stress-ng beside the suite) does
// not reach, so that no takeover by deadtime overlaps a handover.
func mixedLab(t *testing.T, prefix string) (*lab, string) {
	t.Helper()
	testenv.MustHaveNetns(t)
	testenv.Short(t, "builds the previous release and runs two daemons in network namespaces for 10-30 s")
	prev := daemontest.PreviousBinary(t)
	sipedgeBinary(t)
	l := newLabNamed(t, prefix)
	l.deadtime, l.initdead = "3s", "3s"
	return l, prev
}

func binName(b *box, prev string) string {
	if b.bin == prev {
		return fmt.Sprintf("previous release %.7s", daemontest.PreviousRelease)
	}
	return "this release"
}

// edgeConfig is an edge box of the lab (SIP balancer on the VIP, hot
// standby replication to the peer, the default port 695).
func (l *lab) edgeConfig(name, self, peer, role string, prio int) string {
	data := filepath.Join(l.dir, name)
	os.MkdirAll(data, 0o755)
	cfg := fmt.Sprintf(`node: {name: %s, profile: ha-pair, platform: generic-x86_64, data_dir: %s}
log: {level: debug}
sip:
  listen: ["udp:%s:5060"]
  cores:
    - {name: core1, address: "198.51.100.21:5060"}
    - {name: core2, address: "198.51.100.22:5060"}
cluster: {listen: "%s:694", peer: "%s:694", key_file: %s, interval: 100ms}
vips:
  - {name: sip, address: %s/24, interface: eth0, role: %s, priority: %d, deadtime: %s, initdead: %s,
     failback: {enabled: true, stable_for: 1s}, garp: {count: 3, repeat_after: 1s}}
`, name, data, nsVIP, self, peer, l.key, nsVIP, role, prio, cmp.Or(l.deadtime, "300ms"), cmp.Or(l.initdead, "1s"))
	p := filepath.Join(l.dir, name+".yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		l.t.Fatal(err)
	}
	return p
}

// replicaStatus is the part of `ctl replica` the test reads.
type replicaStatus struct {
	Role      string `json:"role"`
	Connected bool   `json:"connected"`
	PeerNode  string `json:"peer_node"`
}

func (l *lab) replica(b *box) replicaStatus {
	out, err := exec.Command(sipedgeBinary(l.t), "ctl", "-config", b.cfg, "-json", "replica").Output()
	var st replicaStatus
	if err == nil {
		json.Unmarshal(out, &st)
	}
	return st
}

// TestNetnsMixedVersionsReplication: two edge boxes, one on the previous
// release, one on this tree, in both roles: the hot-standby replication
// connects (holder active, peer standby) at start and again after a
// clean-stop handover and the failback.
func TestNetnsMixedVersionsReplication(t *testing.T) {
	l, prev := mixedLab(t, "se15cr")
	A := &box{name: "edge-a", ns: l.a, cfg: l.edgeConfig("edge-a", "192.0.2.11", "192.0.2.12", "main", 150)}
	B := &box{name: "edge-b", ns: l.b, cfg: l.edgeConfig("edge-b", "192.0.2.12", "192.0.2.11", "backup", 100)}
	connected := func(what string, active, standby *box) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			a, s := l.replica(active), l.replica(standby)
			if a.Connected && s.Connected && a.Role == "active" && s.Role == "standby" && a.PeerNode == standby.name {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: replication %s %+v, %s %+v; want active/standby, connected\n%s log:\n%s\n%s log:\n%s",
					what, active.name, a, standby.name, s, A.name, l.tail(A), B.name, l.tail(B))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for _, ph := range []struct {
		what         string
		binA, binB   string
		stopA, stopB bool
	}{
		{"A previous, B new", prev, "", false, false},
		{"A new, B previous", "", prev, true, true},
	} {
		if ph.stopB {
			l.stop(B, syscall.SIGTERM)
		}
		if ph.stopA {
			l.stop(A, syscall.SIGTERM)
		}
		A.bin, B.bin = ph.binA, ph.binB
		l.start(A)
		l.start(B)
		l.waitState(A, "master", 15*time.Second)
		l.waitState(B, "backup", 5*time.Second)
		connected(ph.what+": start", A, B)
		l.stop(A, syscall.SIGTERM)
		l.waitState(B, "master", 3*time.Second)
		l.start(A)
		l.waitState(A, "master", 15*time.Second)
		l.waitState(B, "backup", 5*time.Second)
		connected(ph.what+": after failback", A, B)
	}
}
