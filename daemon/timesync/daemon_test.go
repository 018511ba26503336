package timesync_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/internal/daemontest"
	"github.com/sipedge/sipedge/daemon/timesync"
	"github.com/sipedge/sipedge/hal/testenv"
	"github.com/sipedge/sipedge/hal/testenv/ntptest"
)

// TestDaemonTimeState runs the real binary against an NTP server on
// loopback whose clock is 2.5 s ahead, with time.adjust off (a test never
// sets this machine's clock): the measured offset, server and stratum
// show in `ctl time`, the "time" section of `ctl status --json` and of the
// web page's /api/status, and /metrics; an event says it synchronised.
// Then the server stops answering: the state says so.
func TestDaemonTimeState(t *testing.T) {
	testenv.Short(t, "starts the daemon")
	srv, err := ntptest.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.SetAhead(2500 * time.Millisecond)
	d := daemontest.New(t)
	webPort := testenv.FreePort(t)
	d.WriteConfig(fmt.Sprintf(`node: {name: edge-time, profile: single, data_dir: %q}
log: {level: debug}
web: {listen: "127.0.0.1:%d", open_to: [127.0.0.0/8]}
sip:
  listen: ["udp:127.0.0.1:%d"]
time: {ntp: [%q], poll: 1s, adjust: false}
`, d.DataDir(), webPort, testenv.FreePort(t), srv.Addr()))
	d.Start()

	var st timesync.Status
	daemontest.WaitFor(t, 20*time.Second, "time synced", func() bool { d.CtlJSON(&st, timesync.MethodTime); return st.Synced })
	if st.Server != srv.Addr() || st.Stratum != 2 || st.LastAction != "none" || st.OffsetSeconds < 2.2 || st.OffsetSeconds > 2.8 || st.LastSync == nil {
		t.Errorf("ctl time: %+v", st)
	}
	var status struct {
		Sections map[string]timesync.Status `json:"sections"`
	}
	d.CtlJSON(&status, "status")
	if s, ok := status.Sections["time"]; !ok || !s.Synced || s.Server != srv.Addr() {
		t.Errorf("ctl status --json, time section: %+v (present %v)", s, ok)
	}
	if out, _, _ := d.Ctl(timesync.MethodTime); !strings.Contains(out, "synced     yes") || !strings.Contains(out, "measures only") {
		t.Errorf("ctl time:\n%s", out)
	}
	if out, _, _ := d.Ctl("events"); !strings.Contains(out, "time.sync") {
		t.Errorf("events lack time.sync:\n%s", out)
	}
	get := func(path string) string {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", webPort, path))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	var page struct {
		Sections map[string]json.RawMessage `json:"sections"`
	}
	if err := json.Unmarshal([]byte(get("/api/status")), &page); err != nil || !strings.Contains(string(page.Sections["time"]), `"synced":true`) {
		t.Errorf("/api/status time section: %s (%v)", page.Sections["time"], err)
	}
	m := get("/metrics")
	for _, want := range []string{"sipedge_time_synced 1", "sipedge_time_stratum 2", "sipedge_time_offset_seconds 2."} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	srv.SetSilent(true)
	daemontest.WaitFor(t, 30*time.Second, "time unsynced", func() bool { d.CtlJSON(&st, timesync.MethodTime); return !st.Synced })
	if !strings.Contains(st.LastError, "timeout") || st.Errors == 0 {
		t.Errorf("after the server went silent: %+v", st)
	}
	daemontest.WaitFor(t, 10*time.Second, "time.unsynced event", func() bool { out, _, _ := d.Ctl("events"); return strings.Contains(out, "time.unsynced") })
}
