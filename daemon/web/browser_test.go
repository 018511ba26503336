package web_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/sipedge/sipedge/daemon/internal/daemontest"
	"github.com/sipedge/sipedge/daemon/replica"
	"github.com/sipedge/sipedge/daemon/web"
	"github.com/sipedge/sipedge/hal/testenv"
)

// TestBrowser drives the status page served by the real binary in a
// headless Chromium: live values change when a Core goes down, login,
// drain a Core, see it drained; a screenshot is kept as an artifact.
func TestBrowser(t *testing.T) {
	chromium := testenv.MustHaveChromium(t)
	testenv.Short(t, "starts the daemon and a browser")
	core1, core2 := startCore(t), startCore(t)
	d := startDaemon(t, core1, core2)
	const password = "operator password 1"
	if out := d.ctl(password+"\n", "web", "password"); out != "web password set\n" {
		t.Fatalf("ctl web password: %q", out)
	}

	ctx := daemontest.Browser(t, chromium, d.info.TLSSPKI)

	row := func(name string) string { return `tr[data-core="` + name + `"]` }
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	if err := chromedp.Do(ctx,
		chromedp.Navigate(d.web+"/"),
		chromedp.WaitVisible(css(row("core1")+` .state.active`)),
		chromedp.WaitVisible(css(row("core2")+` .state.active`)),
	); err != nil {
		t.Fatalf("page did not show both Cores active: %v", err)
	}
	if node, err := chromedp.Run(ctx, chromedp.Text(css("#node"))); err != nil || node != "edge-web" {
		t.Errorf("node name on the page = %q (%v), want edge-web", node, err)
	}

	// Core 2 goes down: the page shows it without a reload.
	core2.stop()
	start := time.Now()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(css(row("core2")+` .state.inactive`))); err != nil {
		t.Fatalf("page did not show core2 down: %v", err)
	}
	t.Logf("core2 shown down %s after it stopped answering (probe 300ms, down_after 2, page polls 1s)", time.Since(start).Round(10*time.Millisecond))

	// No action button before login.
	buttons, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('button[data-action]').length`))
	if err != nil {
		t.Fatal(err)
	}
	if buttons != 0 {
		t.Errorf("%d action buttons shown before login", buttons)
	}

	// Log in and drain core1.
	drain := css(row("core1") + ` button[data-action="cores.drain"]`)
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(css("#password"), password),
		chromedp.Click(css("#login")),
		chromedp.WaitVisible(css("#logout")),
		chromedp.WaitVisible(drain),
		chromedp.Click(drain),
		chromedp.WaitVisible(css(row("core1")+` .state.draining`)),
	); err != nil {
		t.Fatalf("login and drain: %v", err)
	}
	// Over HTTPS, with the session cookie Secure and HttpOnly.
	if proto, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.protocol`)); err != nil || proto != "https:" {
		t.Errorf("page protocol %q (%v), want https:", proto, err)
	}
	cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	secure := false
	for _, c := range cookies.Cookies {
		if c.Name == "sipedge_session" {
			secure = c.Secure && c.HTTPOnly
		}
	}
	if !secure {
		t.Errorf("session cookie not Secure+HttpOnly over HTTPS: %+v", cookies)
	}
	events, err := chromedp.Run(ctx, chromedp.Text(css("#events")))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"daemon.start", "web.login"} {
		if !strings.Contains(events, want) {
			t.Errorf("events on the page lack %s:\n%s", want, events)
		}
	}

	// The daemon agrees (the page did not just paint it).
	var pool struct {
		Cores []struct {
			Name  string `json:"name"`
			State string `json:"state"`
		} `json:"cores"`
	}
	if err := json.Unmarshal([]byte(d.ctl("", "-json", "cores")), &pool); err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, c := range pool.Cores {
		states[c.Name] = c.State
	}
	if states["core1"] != "draining" || states["core2"] != "inactive" {
		t.Errorf("ctl cores after the web drain: %v, want core1 draining, core2 inactive", states)
	}

	// This box has no replication: no Hot standby section.
	if hidden, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("replica-section").hidden`)); err != nil || !hidden {
		t.Errorf("Hot standby section hidden = %v (%v) on a box without replication", hidden, err)
	}

	screenshot(ctx, t, "web-status-page.png")

	standbyPage(ctx, t)
}

// screenshot saves the page as name in the test's temporary directory
// and in $SIPEDGE_ARTIFACTS when set.
func screenshot(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{t.TempDir(), os.Getenv("SIPEDGE_ARTIFACTS")} {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Errorf("artifacts dir: %v", err)
		} else if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Errorf("save screenshot: %v", err)
		} else {
			t.Logf("screenshot: %s (%d bytes)", p, len(png))
		}
	}
}

// standbyCtl is a box in hot standby whose VIP group an operator took
// over: the control methods the page reads, and vip.auto, which ends
// the pin.
type standbyCtl struct {
	mu     sync.Mutex
	pinned bool
	calls  []string
}

func (f *standbyCtl) Methods() map[string]string {
	return map[string]string{"status": "", "events": "", "vip": "", "vip.auto": "", "replica": ""}
}

func (f *standbyCtl) Call(_ context.Context, method string, params json.RawMessage) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch method {
	case "status":
		return map[string]any{"node": "edge-b", "version": "test", "alarms": []map[string]any{{"id": "vip.placement.sip", "severity": "warning",
			"message": "VIP sip cannot move: the peer 192.0.2.11 does not answer ARP on eth0", "since": "2026-12-03T04:00:00Z"}}}, nil
	case "events":
		return []any{}, nil
	case "replica":
		return replica.Status{Role: "standby", Peer: "192.0.2.11:695", Connected: true, PeerNode: "edge-a", LagMS: 1.5, Dialogs: 42}, nil
	case "vip.auto":
		f.calls = append(f.calls, method+" "+string(params))
		f.pinned = false
	}
	return map[string]any{"node": "edge-b", "groups": []map[string]any{{"name": "sip", "address": "192.0.2.10/24",
		"role": "backup", "state": "master", "holder": "edge-b", "pinned": f.pinned}}}, nil
}

// standbyPage shows the page of a box with replication (in process,
// over a fake control server): the Hot standby section with its
// figures, and the VIP group's "automatic" button, which calls vip.auto.
func standbyPage(ctx context.Context, t *testing.T) {
	t.Helper()
	const password = "standby password 1"
	h, err := web.NewHash(password, 1000)
	if err != nil {
		t.Fatal(err)
	}
	f := &standbyCtl{pinned: true}
	s, err := web.New(web.Options{Ctl: f, Password: func() (web.Hash, bool, error) { return h, true, nil },
		Warnings: []web.Warning{{Setting: "web.listen", Message: "plain HTTP on 192.0.2.12:8080"}}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	auto := chromedp.CSS(`tr[data-vip="sip"] button[data-action="vip.auto"]`)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(ts.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS("#replica-dialogs-mirrored")),
		chromedp.WaitVisible(chromedp.CSS("#replica-role .state.standby")),
		chromedp.WaitVisible(chromedp.CSS("#replica-connected .state.connected")),
	); err != nil {
		t.Fatalf("standby page: no Hot standby section: %v", err)
	}
	// The unsafe setting this box runs with is a banner.
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#alarms p[data-setting="web.listen"]`))); err != nil {
		t.Fatalf("standby page: no alarm banner: %v", err)
	}
	// So is each standing alarm of ctl status.
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#alarms p[data-alarm="vip.placement.sip"]`))); err != nil {
		t.Fatalf("standby page: the standing alarm is not shown: %v", err)
	}
	if alarm, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#alarms"))); err != nil || !strings.Contains(alarm, "plain HTTP on 192.0.2.12:8080") ||
		!strings.Contains(alarm, "does not answer ARP on eth0") {
		t.Errorf("alarm banner %q (%v)", alarm, err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#replica-section")))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Hot standby", "mirrors the peer", "edge-a at 192.0.2.11:695", "1.5 ms", "42", "events pending"} {
		if !strings.Contains(text, want) {
			t.Errorf("Hot standby section lacks %q:\n%s", want, text)
		}
	}
	if err := chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`tr[data-vip="sip"] .vip-pin`)),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(auto),
		chromedp.Evaluate[chromedp.Void](`window.confirm = () => true; undefined`),
		chromedp.Click(auto),
		chromedp.WaitNotPresent(auto),
	); err != nil {
		t.Fatalf("standby page: login and back to automatic: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if want := `vip.auto {"group":"sip","name":"sip"}`; len(f.calls) != 1 || f.calls[0] != want {
		t.Errorf("calls from the page: %q, want [%s]", f.calls, want)
	}
}
