package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/sipedge/sipedge/daemon/ctl"
	"github.com/sipedge/sipedge/daemon/internal/daemontest"
	"github.com/sipedge/sipedge/daemon/web"
	"github.com/sipedge/sipedge/hal/testenv"
)

// updateCtl is a box that installs what it is given: update.apply reads
// the uploaded file (the web server removes it after the call) and
// answers as the daemon does, or refuses once told to.
type updateCtl struct {
	mu     sync.Mutex
	got    [][]byte
	refuse bool
}

func (f *updateCtl) Methods() map[string]string {
	return map[string]string{"status": "", "events": "", web.MethodUpdate: "", web.MethodUpdateApply: ""}
}

func (f *updateCtl) Call(_ context.Context, method string, params json.RawMessage) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch method {
	case web.MethodUpdate:
		return map[string]any{"version": "v1.0.0+5", "slot": "A"}, nil
	case web.MethodUpdateApply:
		var p struct {
			File string `json:"file"`
		}
		json.Unmarshal(params, &p)
		b, err := os.ReadFile(p.File)
		if err != nil {
			return nil, err
		}
		f.got = append(f.got, b)
		if f.refuse {
			return nil, ctl.Errorf(ctl.CodeBadRequest, "update: bad signature")
		}
		return map[string]any{"version": "v1.0.1+6", "slot": "B", "bytes": len(b)}, nil
	case "events":
		return []any{}, nil
	}
	return map[string]any{"node": "edge-u"}, nil
}

// TestBrowserUpdateUpload: the update page, in headless Chromium, after
// the login: a bundle chosen in the form reaches the daemon byte for
// byte with the session's CSRF token, and the page says what came of it
// (installed and rebooting, or refused and why).
func TestBrowserUpdateUpload(t *testing.T) {
	chromium := testenv.MustHaveChromium(t)
	testenv.Short(t, "starts a browser")
	const password = "update password 1"
	h, err := web.NewHash(password, 1000)
	if err != nil {
		t.Fatal(err)
	}
	f := &updateCtl{}
	s, err := web.New(web.Options{Ctl: f, Password: func() (web.Hash, bool, error) { return h, true, nil }, UploadDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	bundle := filepath.Join(t.TempDir(), "sipedge-update.bundle")
	content := bytes.Repeat([]byte("a signed bundle\x00\xff"), 64<<10) // 1 MiB: the progress has something to show
	if err := os.WriteFile(bundle, content, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := daemontest.Browser(t, chromium, "")
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	upload := func() (string, error) {
		if err := chromedp.Do(ctx,
			chromedp.Navigate(ts.URL+"/static/update.html"),
			chromedp.WaitVisible(css("#update-form")),
			chromedp.SetUploadFiles(css("#bundle"), []string{bundle}),
			chromedp.Evaluate[chromedp.Void](`window.confirm = () => true; undefined`),
			chromedp.Click(css(`#update-form button[type="submit"]`)),
			chromedp.WaitVisible(css("#message.ok, #message.error")),
		); err != nil {
			return "", err
		}
		return chromedp.Run(ctx, chromedp.Text(css("#message")))
	}
	// Not logged in: no form, a pointer to the login.
	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/static/update.html"), chromedp.WaitVisible(css("#need-login"))); err != nil {
		t.Fatalf("update page before the login: %v", err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(ts.URL+"/"),
		chromedp.WaitVisible(css("#password")),
		chromedp.SendKeys(css("#password"), password),
		chromedp.Click(css("#login")),
		chromedp.WaitVisible(css("#logout")),
	); err != nil {
		t.Fatalf("login: %v", err)
	}
	msg, err := upload()
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	if !strings.Contains(msg, "v1.0.1+6 written to slot B") || !strings.Contains(msg, "reboots into its trial") {
		t.Errorf("message after the upload: %q", msg)
	}
	f.mu.Lock()
	if len(f.got) != 1 || !bytes.Equal(f.got[0], content) {
		t.Errorf("the daemon got %d uploads, first of %d bytes; want 1 of %d bytes, the same", len(f.got), len(firstOr(f.got)), len(content))
	}
	f.refuse = true
	f.mu.Unlock()
	msg, err = upload()
	if err != nil {
		t.Fatalf("second upload: %v", err)
	}
	if !strings.Contains(msg, "refused: update: bad signature") {
		t.Errorf("message after a refused upload: %q", msg)
	}
}

func firstOr(bs [][]byte) []byte {
	if len(bs) == 0 {
		return nil
	}
	return bs[0]
}
