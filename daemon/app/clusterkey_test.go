package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sipedge/sipedge/daemon/internal/daemontest"
	"github.com/sipedge/sipedge/daemon/store"
	"github.com/sipedge/sipedge/hal/testenv"
)

// TestWeakClusterKeyBinary, through the real binary in a network
// namespace (the VIP goes on its loopback): a new box refuses to start
// with a weak cluster key (the previous release started with a
// 16-character password in a 0644 file); a box that already ran keeps
// running with one, under an alarm in `ctl status` and an event.
func TestWeakClusterKeyBinary(t *testing.T) {
	wrap := testenv.NewNetns(t, fmt.Sprintf("se15c-key-%d", os.Getpid()))

	d := daemontest.New(t)
	key := filepath.Join(d.Dir, "cluster.key")
	port := testenv.FreePort(t)
	d.WriteConfig(fmt.Sprintf(`node: {name: db-a, profile: four-box, data_dir: %s}
web: {listen: ""}
cluster: {listen: "127.0.0.1:%d", peer: "127.0.0.2:%d", key_file: %s, interval: 100ms}
vips:
  - {name: db, address: 192.0.2.10/32, interface: lo, role: main, deadtime: 1s, initdead: 1h, track: [{tcp: "127.0.0.1:3306"}]}
`, d.DataDir(), port, port, key))
	weak := func(mode os.FileMode) {
		t.Helper()
		os.Remove(key)
		if err := os.WriteFile(key, []byte("Summer2026!edgeA\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(key, mode); err != nil {
			t.Fatal(err)
		}
	}

	// A new box: refused, with the reason.
	weak(0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, wrap[0], append(wrap[1:], d.Bin, "run", "-config", d.Config)...).CombinedOutput()
	if err == nil || ctx.Err() != nil || !strings.Contains(string(out), "cluster key refused") ||
		!strings.Contains(string(out), "mode 0644") || !strings.Contains(string(out), "16 printable characters") {
		t.Fatalf("new box with a weak key: err %v, output:\n%s", err, out)
	}
	if _, stderr, code := d.Ctl("config", "validate"); code != 1 || !strings.Contains(stderr, "cluster.key_file") {
		t.Errorf("config validate with a weak key: exit %d, %s", code, stderr)
	}

	// A good key: it starts, no alarm.
	os.Remove(key)
	if _, stderr, code := d.Ctl("cluster", "keygen"); code != 0 {
		t.Fatalf("ctl cluster keygen: exit %d: %s", code, stderr)
	}
	d.Start(wrap...)
	var st Status
	d.CtlJSON(&st, "status")
	if len(st.Alarms) != 0 {
		t.Errorf("alarms with a good key: %+v", st.Alarms)
	}
	if err := d.Stop(os.Interrupt, 15*time.Second); err != nil {
		t.Logf("stop: %v", err)
	}

	// The same box after an update that brought the check, with the
	// weak key it had: it runs, under an alarm.
	weak(0o644)
	d2 := daemontest.New(t, d.Dir)
	d2.Start(wrap...)
	d2.CtlJSON(&st, "status")
	if len(st.Alarms) != 1 || st.Alarms[0].ID != "cluster.key" || st.Alarms[0].Severity != AlarmCritical ||
		!strings.Contains(st.Alarms[0].Message, "mode 0644") {
		t.Fatalf("alarms of an existing box with a weak key: %+v", st.Alarms)
	}
	if text, _, _ := d2.Ctl("status"); !strings.Contains(text, "ALARM:") {
		t.Errorf("ctl status does not show the alarm:\n%s", text)
	}
	var vip json.RawMessage
	d2.CtlJSON(&vip, "vip") // the failover runs
	daemontest.WaitFor(t, 5*time.Second, "the alarm event", func() bool {
		ev, _, _ := d2.Ctl("events")
		return strings.Contains(ev, "alarm") && strings.Contains(ev, "cluster.key")
	})
}

// TestAlarmMetric: a raised alarm is in status and sipedge_alarm{id}.
func TestAlarmMetric(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	a := &App{reg: prometheus.NewRegistry(), log: log, events: store.NewRecorder(nil, log)}
	a.raiseAlarm("cluster.key", AlarmCritical, "weak")
	a.raiseAlarm("cluster.key", AlarmCritical, "weaker") // replaced, not doubled
	if al := a.Alarms(); len(al) != 1 || al[0].Message != "weaker" {
		t.Errorf("alarms %+v", al)
	}
	if v := testutil.ToFloat64(a.alarms.gauge.WithLabelValues("cluster.key")); v != 1 {
		t.Errorf("sipedge_alarm{id=cluster.key} = %v", v)
	}
}
