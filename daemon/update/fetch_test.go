package update

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

func TestFetch(t *testing.T) {
	body := "SIPEDGE-BUNDLE1\nsigned bytes"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Header().Set("Content-Length", "70000000")
			w.Write([]byte("x"))
		case "/away":
			http.Redirect(w, r, "http://192.0.2.200:1/b", http.StatusFound)
		default:
			w.Write([]byte(body))
		}
	}))
	defer srv.Close()
	loop := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	dir := t.TempDir()
	ctx := context.Background()
	p, err := Fetch(ctx, srv.URL+"/b", loop, dir, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != body {
		t.Fatalf("fetched %q", b)
	}
	for _, tt := range []struct {
		url     string
		allowed []netip.Prefix
		want    string
	}{
		{srv.URL + "/b", []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, "not on the management network"},
		{srv.URL + "/away", loop, "not on the management network"},
		{srv.URL + "/big", loop, "a bundle is at most"},
		{"file:///etc/passwd", loop, "not an http(s) URL"},
		{srv.URL + "/b", nil, "no management network"},
	} {
		if _, err := Fetch(ctx, tt.url, tt.allowed, dir, 10*time.Second); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.url, err, tt.want)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("left behind: %v", ents)
	}
}
