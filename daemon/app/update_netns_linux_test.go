package app

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/internal/daemontest"
	"github.com/sipedge/sipedge/hal/testenv"
)

// TestUpdateRefusedOnLoneVIPHolder, through the real binary in a network
// namespace: a box that holds a VIP while no peer is alive refuses
// `ctl update apply` (exit 5, the reason said), before the bundle is
// even read; with --force the update goes on (and here stops at the
// next check: this box did not boot from the A/B disk).
func TestUpdateRefusedOnLoneVIPHolder(t *testing.T) {
	wrap := testenv.NewNetns(t, fmt.Sprintf("u17-upd-%d", os.Getpid()))
	d := daemontest.New(t)
	key := filepath.Join(d.Dir, "cluster.key")
	port := testenv.FreePort(t)
	d.WriteConfig(fmt.Sprintf(`node: {name: edge-a, profile: ha-pair, data_dir: %s}
web: {listen: ""}
sip: {listen: ["udp:127.0.0.1:%d"], cores: []}
cluster: {listen: "127.0.0.1:%d", peer: "127.0.0.2:%d", key_file: %s, interval: 100ms}
vips:
  - {name: sip, address: 192.0.2.140/32, interface: lo, role: main, deadtime: 1s, initdead: 1s}
`, d.DataDir(), testenv.FreePort(t), port, port, key))
	if _, stderr, code := d.Ctl("cluster", "keygen", key); code != 0 {
		t.Fatalf("ctl cluster keygen: exit %d: %s", code, stderr)
	}
	d.Start(wrap...)
	daemontest.WaitFor(t, 20*time.Second, "the VIP held by this box", func() bool {
		var st struct {
			Node   string `json:"node"`
			Groups []struct {
				Holder string `json:"holder"`
			} `json:"groups"`
		}
		raw, _, _ := d.Ctl("-json", "vip")
		return json.Unmarshal([]byte(raw), &st) == nil && len(st.Groups) == 1 && st.Groups[0].Holder == st.Node
	})
	bundle := filepath.Join(d.Dir, "sipedge-update.bundle")
	os.WriteFile(bundle, []byte("SIPEDGE-BUNDLE1\n"), 0o600)
	_, stderr, code := d.Ctl("update", "apply", bundle)
	if code != 5 || !strings.Contains(stderr, "holds VIP sip and no peer is alive to take it") {
		t.Fatalf("update on a lone VIP holder: exit %d: %s", code, stderr)
	}
	_, stderr, code = d.Ctl("update", "apply", bundle, "--force")
	if code == 0 || !strings.Contains(stderr, "did not boot from the A/B disk") {
		t.Fatalf("forced update: exit %d: %s", code, stderr)
	}
	ev, _, _ := d.Ctl("events")
	if !strings.Contains(ev, "update.refused") {
		t.Errorf("no update.refused event:\n%s", ev)
	}
}
