package web_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/internal/daemontest"
	"github.com/sipedge/sipedge/daemon/web"
	"github.com/sipedge/sipedge/hal/testenv"
)

// TestPlainHTTPOffLoopbackAlarm: a box whose file was written before
// web.tls (plain HTTP on its LAN address, no admin_from) keeps serving
// as before, but raises the alarm everywhere: ctl web, an event, the
// page's overview, /metrics; and `ctl config validate` fails on the
// file. The old code said the file was ok and raised nothing.
func TestPlainHTTPOffLoopbackAlarm(t *testing.T) {
	testenv.MustHaveNetns(t)
	testenv.Short(t, "starts the daemon in a network namespace")
	ns := fmt.Sprintf("se15w%d", os.Getpid()%100000)
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "addr", "add", "192.0.2.11/24", "dev", "lo"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
		if args[0] == "netns" {
			t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		}
	}
	port := testenv.FreePort(t)
	d := daemontest.New(t)
	d.WriteConfig(fmt.Sprintf(`node: {name: edge-old, profile: single, platform: generic-x86_64, data_dir: %q}
web: {listen: "192.0.2.11:%d", open_to: [192.0.2.0/24]}
sip: {listen: ["udp:127.0.0.1:%d"]}
`, d.DataDir(), port, testenv.FreePort(t)))

	out, errOut, code := d.Ctl("config", "validate", d.Config)
	if code == 0 || !strings.Contains(errOut, "web.listen: plain HTTP on 192.0.2.11") || !strings.Contains(errOut, "web.admin_from: not set") {
		t.Errorf("config validate of the old file: exit %d\n%s%s", code, out, errOut)
	}

	d.Start("ip", "netns", "exec", ns)
	var in web.Info
	d.CtlJSON(&in, "web")
	if in.Scheme != "http" || len(in.Warnings) != 2 || !in.OpenToActs {
		t.Errorf("ctl web: %+v, want plain http, two warnings, open_to may act", in)
	}
	if out, _, _ := d.Ctl("web"); !strings.Contains(out, "WARNING:      web.listen: plain HTTP") {
		t.Errorf("ctl web does not show the alarm:\n%s", out)
	}
	if out, _, _ := d.Ctl("events"); !strings.Contains(out, "config.unsafe") {
		t.Errorf("no config.unsafe event:\n%s", out)
	}
	base := fmt.Sprintf("http://192.0.2.11:%d", port)
	got := fetchInNetns(t, ns, base+"/api/overview", base+"/metrics")
	var ov struct{ Warnings []web.Warning }
	if err := json.Unmarshal([]byte(got[0]), &ov); err != nil || len(ov.Warnings) != 2 {
		t.Errorf("overview warnings: %v %+v\n%.300s", err, ov.Warnings, got[0])
	}
	if !strings.Contains(got[1], `sipedge_web_unsafe_config{setting="web.listen"} 1`) {
		t.Errorf("/metrics lacks the alarm")
	}
}

// fetchInNetns GETs urls from inside namespace ns (this test binary run
// there as a child) and returns the bodies.
func fetchInNetns(t *testing.T, ns string, urls ...string) []string {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestFetchChild$", "-test.v")
	cmd.Env = append(os.Environ(), "SE15W_FETCH="+strings.Join(urls, " "))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("fetch in %s: %v\n%s", ns, err, out)
	}
	var bodies []string
	for _, part := range strings.Split(string(out), "\n=====FETCHED=====\n")[1:] {
		body, _, _ := strings.Cut(part, "\n=====END=====\n")
		bodies = append(bodies, body)
	}
	if len(bodies) != len(urls) {
		t.Fatalf("fetch in %s: %d bodies for %d URLs\n%s", ns, len(bodies), len(urls), out)
	}
	return bodies
}

// TestFetchChild is fetchInNetns's child (it does nothing in a normal run).
func TestFetchChild(t *testing.T) {
	urls := os.Getenv("SE15W_FETCH")
	if urls == "" {
		t.Skip("child of fetchInNetns")
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	for _, u := range strings.Fields(urls) {
		resp, err := hc.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %s\n%s", u, resp.Status, body)
		}
		fmt.Printf("\n=====FETCHED=====\n%s\n=====END=====\n", body)
	}
}
