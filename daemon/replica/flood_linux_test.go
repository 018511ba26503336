package replica_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/internal/daemontest"
	"github.com/sipedge/sipedge/daemon/replica"
	"github.com/sipedge/sipedge/hal/testenv"
)

// TestNetnsReplicationFlood runs the real binary on two boxes in network
// namespaces on one bridge (prefix se15r): A 192.0.2.11 (holds the VIP
// 192.0.2.10, streams), B 192.0.2.12 (standby), and a stranger X
// 192.0.2.66. While A streams to B, X opens 2,000 connections to B's
// replication port and 64 more that each claim a 4 MiB hello and send
// 4 MiB; then the same 64 from A's own address (another process in A's
// namespace: the peer's address, not the peer). B's peak RSS grows by
// less than 32 MiB (the previous code allocated each claimed 4 MiB), and
// its session with A is the one it had: connected, never re-established,
// no resync.
func TestNetnsReplicationFlood(t *testing.T) {
	testenv.MustHaveNetns(t)
	testenv.Short(t, "runs two daemons in network namespaces and floods one for about 20 s")
	sfx := fmt.Sprintf("%d%03d", os.Getpid()%100000, time.Now().UnixNano()%1000)
	ns := map[string]string{}
	for _, r := range []string{"br", "a", "b", "x"} {
		n := "se15r" + r + sfx
		ns[r] = n
		hsRun(t, "ip", "netns", "add", n)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", n).Run() })
		hsRun(t, "ip", "-n", n, "link", "set", "lo", "up")
	}
	hsRun(t, "ip", "-n", ns["br"], "link", "add", "br0", "type", "bridge")
	hsRun(t, "ip", "-n", ns["br"], "link", "set", "br0", "up")
	for i, h := range [][2]string{{"a", "192.0.2.11/24"}, {"b", "192.0.2.12/24"}, {"x", "192.0.2.66/24"}} {
		port := fmt.Sprintf("p%d", i)
		hsRun(t, "ip", "-n", ns["br"], "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns[h[0]])
		hsRun(t, "ip", "-n", ns["br"], "link", "set", port, "master", "br0", "up")
		hsRun(t, "ip", "-n", ns[h[0]], "addr", "add", h[1], "dev", "eth0")
		hsRun(t, "ip", "-n", ns[h[0]], "link", "set", "eth0", "up")
	}
	keyFile := filepath.Join(t.TempDir(), "cluster.key")
	if err := os.WriteFile(keyFile, []byte("replication-flood-test-key-0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	box := func(name, role, self, peer string) *daemontest.Daemon {
		d := daemontest.New(t)
		d.WriteConfig(fmt.Sprintf(`node: {name: %s, profile: ha-pair, platform: generic-x86_64, data_dir: %s}
log: {level: info}
sip:
  listen: ["udp:192.0.2.10:5060"]
  cores:
    - {name: core1, address: "198.51.100.21:5060"}
    - {name: core2, address: "198.51.100.22:5060"}
cluster: {listen: "%s:694", peer: "%s:694", key_file: %s, interval: 100ms}
vips:
  - {name: sip, address: 192.0.2.10/24, interface: eth0, role: %s, deadtime: 300ms, initdead: 1s, failback: {enabled: false}, garp: {count: 1, repeat_after: 1s}}
`, name, d.DataDir(), self, peer, keyFile, role))
		return d
	}
	A := box("edge-a", "main", "192.0.2.11", "192.0.2.12").Start("ip", "netns", "exec", ns["a"])
	B := box("edge-b", "backup", "192.0.2.12", "192.0.2.11").Start("ip", "netns", "exec", ns["b"])
	status := func(d *daemontest.Daemon) replica.Status {
		var st replica.Status
		d.CtlJSON(&st, "replica")
		return st
	}
	daemontest.WaitFor(t, 15*time.Second, "A streams to B", func() bool {
		return status(A).Connected && status(B).Connected && status(B).Counters["snapshots_applied"] == 1
	})
	time.Sleep(500 * time.Millisecond)
	b0, a0 := status(B), status(A)
	proc := func(f string) string { return fmt.Sprintf("/proc/%d/%s", B.PID(), f) }
	if err := os.WriteFile(proc("clear_refs"), []byte("5"), 0); err != nil { // resets VmHWM
		t.Fatal(err)
	}
	rss0 := vmKiB(t, proc("status"), "VmRSS")

	target := "192.0.2.12:695"
	fx := flood(t, ns["x"], "192.0.2.66", target, 2000, 64)
	fa := flood(t, ns["a"], "192.0.2.11", target, 0, 64)
	time.Sleep(500 * time.Millisecond)

	hwm, rss1 := vmKiB(t, proc("status"), "VmHWM"), vmKiB(t, proc("status"), "VmRSS")
	b1, a1 := status(B), status(A)
	t.Logf("B RSS %d KiB before, peak %d KiB during the flood (+%d KiB), %d KiB after", rss0, hwm, hwm-rss0, rss1)
	t.Logf("from X: %s; from A's address: %s", fx, fa)
	t.Logf("B counters: %v", b1.Counters)
	if hwm-rss0 > 32<<10 {
		t.Errorf("B's peak RSS grew by %d MiB under the flood", (hwm-rss0)>>10)
	}
	if fx.Answered != 0 || fa.Answered != 0 {
		t.Errorf("B answered the flood: %d bytes to X, %d to A's address", fx.Answered, fa.Answered)
	}
	if !b1.Connected || b1.Counters["sessions"] != b0.Counters["sessions"] || b1.Counters["snapshots_applied"] != b0.Counters["snapshots_applied"] ||
		!a1.Connected || a1.Counters["sessions"] != a0.Counters["sessions"] || a1.Counters["resyncs"] != 0 {
		t.Errorf("the session changed:\nB before %+v\nB after  %+v\nA before %+v\nA after  %+v", b0, b1, a0, a1)
	}
	if b1.LastFrameAgo == nil || time.Duration(*b1.LastFrameAgo) > 3*time.Second {
		t.Errorf("B hears nothing from A: last frame %v ago", b1.LastFrameAgo)
	}
	if got := b1.Counters["rejected_source"] - b0.Counters["rejected_source"]; got < 2000+64 {
		t.Errorf("B refused %d connections from X, want %d", got, 2000+64)
	}
	if b1.Counters["rejected_oversize"]+b1.Counters["superseded"] == 0 {
		t.Errorf("the oversized hellos from A's address were not counted: %v", b1.Counters)
	}
}

func vmKiB(t *testing.T, file, field string) int {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	t.Fatalf("%s: no %s", file, field)
	return 0
}

// floodResult is what the flood helper reports.
type floodResult struct {
	Connected int   `json:"connected"` // connections established
	Answered  int64 `json:"answered"`  // bytes the target sent back
	Sent      int64 `json:"sent"`      // bytes the target took
}

func (r floodResult) String() string {
	return fmt.Sprintf("%d connections, %d bytes taken, %d answered", r.Connected, r.Sent, r.Answered)
}

// flood runs this test binary's flood helper in namespace ns, bound to
// src: churn connections opened and closed, then held connections that
// each claim a 4 MiB hello and send up to 4 MiB of it, all at once.
func flood(t *testing.T, ns, src, target string, churn, held int) floodResult {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestReplicationFloodHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "SE15R_FLOOD="+strings.Join([]string{src, target, strconv.Itoa(churn), strconv.Itoa(held)}, ","))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("flood helper: %v\n%s", err, out)
	}
	_, js, ok := strings.Cut(string(out), "FLOOD ")
	var r floodResult
	if !ok || json.Unmarshal([]byte(strings.SplitN(js, "\n", 2)[0]), &r) != nil {
		t.Fatalf("flood helper said:\n%s", out)
	}
	return r
}

// TestReplicationFloodHelper is the flooder that TestNetnsReplicationFlood
// starts inside a namespace; it does nothing in a plain test run.
func TestReplicationFloodHelper(t *testing.T) {
	spec := os.Getenv("SE15R_FLOOD")
	if spec == "" {
		return // run only by TestNetnsReplicationFlood
	}
	f := strings.Split(spec, ",")
	src, target := f[0], f[1]
	churn, _ := strconv.Atoi(f[2])
	held, _ := strconv.Atoi(f[3])
	hdr := make([]byte, 32)
	copy(hdr, "SERP")
	hdr[4], hdr[5] = 1, 1                       // version 1, hello
	binary.BigEndian.PutUint32(hdr[24:], 4<<20) // claims 4 MiB
	d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	var res floodResult
	var connected atomic.Int32
	var answered, sent atomic.Int64
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; i < churn && time.Now().Before(deadline); i++ {
		if c, err := d.Dial("tcp", target); err == nil {
			connected.Add(1)
			c.Write(hdr)
			c.Close()
		}
	}
	var wg sync.WaitGroup
	body := make([]byte, 64<<10)
	for i := 0; i < held; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := d.Dial("tcp", target)
			if err != nil {
				return
			}
			defer c.Close()
			connected.Add(1)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			go func() {
				buf := make([]byte, 512)
				for {
					n, err := c.Read(buf)
					answered.Add(int64(n))
					if err != nil {
						return
					}
				}
			}()
			if _, err := c.Write(hdr); err != nil {
				return
			}
			for k := 0; k < 64; k++ { // 4 MiB
				n, err := c.Write(body)
				sent.Add(int64(n))
				if err != nil {
					return
				}
			}
			time.Sleep(time.Second)
		}()
	}
	wg.Wait()
	res.Connected, res.Answered, res.Sent = int(connected.Load()), answered.Load(), sent.Load()
	js, _ := json.Marshal(res)
	fmt.Printf("FLOOD %s\n", js)
}
