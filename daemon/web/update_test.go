package web

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/sipedge/sipedge/daemon/ctl"
)

// The upload reaches update.apply only with a session and the CSRF
// token, as a file holding exactly the bytes sent, removed afterwards;
// a body over MaxUpload is refused before the daemon is called.
func TestUpdateUpload(t *testing.T) {
	f := newFake()
	var got []byte
	var file string
	f.methods[MethodUpdateApply] = func(_ context.Context, p json.RawMessage) (any, error) {
		var q struct {
			File  string `json:"file"`
			Force bool   `json:"force"`
		}
		json.Unmarshal(p, &q)
		file = q.File
		got, _ = os.ReadFile(q.File)
		if !q.Force {
			return nil, ctl.Errorf(ctl.CodeBadRequest, "bundle: older than the running firmware")
		}
		return map[string]any{"version": "v1.0.0+2", "slot": "B"}, nil
	}
	f.methods[MethodUpdate] = func(context.Context, json.RawMessage) (any, error) {
		return map[string]any{"version": "v1.0.0+1", "slot": "A"}, nil
	}
	_, c := newServer(t, f, nil, DefaultLockout)
	// The page and the status it reads.
	if code, v := c.do("GET", "/api/update/status", "", nil); code != 200 || v["slot"] != "A" {
		t.Fatalf("update status: %d %v", code, v)
	}
	resp, err := c.http.Get(c.base + "/static/update.html")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("update page: %v %v", resp, err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), `<script src="/static/update.js"`) || !strings.Contains(string(page), `id="update-form"`) {
		t.Fatalf("update page:\n%s", page)
	}
	body := "SIPEDGE-BUNDLE1\n...signed bytes..."
	// No session: refused, the daemon never called.
	c.session()
	if code, v := c.do("POST", "/api/update", body, map[string]string{headerCSRF: c.csrf}); code != 401 || errCode(v) != "login_required" {
		t.Fatalf("without login: %d %v", code, v)
	}
	if c.login(testPassword) != 200 {
		t.Fatal("login")
	}
	if code, v := c.do("POST", "/api/update", body, nil); code != 403 || errCode(v) != "csrf" {
		t.Fatalf("without CSRF: %d %v", code, v)
	}
	if code, _ := c.do("POST", "/api/update", body, map[string]string{headerCSRF: c.csrf, "Origin": "https://evil.example"}); code != 403 {
		t.Fatalf("cross-origin: %d", code)
	}
	if f.called(MethodUpdateApply) != 0 {
		t.Fatal("update.apply called without a session and its token")
	}
	// The daemon's refusal comes back as is.
	if code, v := c.do("POST", "/api/update", body, map[string]string{headerCSRF: c.csrf}); code != 400 || !strings.Contains(v["error"].(map[string]any)["message"].(string), "older") {
		t.Fatalf("refused bundle: %d %v", code, v)
	}
	code, v := c.do("POST", "/api/update?force=1", body, map[string]string{headerCSRF: c.csrf})
	if code != 200 || string(got) != body {
		t.Fatalf("forced upload: %d %v, daemon read %q", code, v, got)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("upload %s left behind: %v", file, err)
	}
	// Too big: refused on its Content-Length, the daemon not called.
	n := f.called(MethodUpdateApply)
	if code, _ := c.do("POST", "/api/update", strings.Repeat("x", MaxUpload+1), map[string]string{headerCSRF: c.csrf}); code != 413 {
		t.Fatalf("oversized upload: %d", code)
	}
	if f.called(MethodUpdateApply) != n {
		t.Fatal("update.apply called for an oversized upload")
	}
}
