package web_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

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

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1000, 1100),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 120*time.Second)
	defer cancelT()

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

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{t.TempDir(), os.Getenv("SIPEDGE_ARTIFACTS")} {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, "web-status-page.png")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Errorf("artifacts dir: %v", err)
		} else if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Errorf("save screenshot: %v", err)
		} else {
			t.Logf("screenshot: %s (%d bytes)", p, len(png))
		}
	}
}
