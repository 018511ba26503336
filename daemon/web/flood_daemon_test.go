package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"testing"

	"github.com/sipedge/sipedge/daemon/web"
	"github.com/sipedge/sipedge/hal/testenv"
)

// TestLoginFlood: the real binary, 40 wrong passwords sent at once from
// one address: at most the policy's 5 are checked (PBKDF2 runs, counted
// by sipedge_web_logins_total{result="bad_password"}), the rest get 429;
// the operator at another administration address still logs in. The old
// code checked all 40 (5 s and 7.5 s of CPU on the development machine).
func TestLoginFlood(t *testing.T) {
	testenv.Short(t, "starts the daemon")
	d := startDaemon(t)
	const password = "flood test password"
	d.ctl(password+"\n", "web", "password")

	attacker := d.loginClient(t, "127.0.0.1")
	codes := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code := attacker.login(t, fmt.Sprintf("wrong password %d", i))
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	checked := counter(d.scrape(), "sipedge_web_logins_total", "result", "bad_password")
	t.Logf("40 parallel wrong logins: codes %v, %v checked", codes, checked)
	if checked > float64(web.DefaultLockout.Failures) || codes[401] != int(checked) {
		t.Errorf("%v of 40 parallel wrong logins were checked (codes %v), want at most %d", checked, codes, web.DefaultLockout.Failures)
	}
	if codes[429] < 40-web.DefaultLockout.Failures {
		t.Errorf("%d answered 429, want at least %d", codes[429], 40-web.DefaultLockout.Failures)
	}
	// The operator at another administration address logs in.
	if code := d.loginClient(t, "127.0.0.2").login(t, password); code != 200 {
		t.Errorf("right password from another administration address = %d, want 200", code)
	}
}

// loginClient is a browser-like client (cookies, CSRF token) of d whose
// connections leave from the local address from.
type loginClient struct {
	d    *daemon
	http *http.Client
	csrf string
}

func (d *daemon) loginClient(t *testing.T, from string) *loginClient {
	t.Helper()
	tr := d.http.Transport.(*http.Transport).Clone()
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, addr)
	}
	jar, _ := cookiejar.New(nil)
	c := &loginClient{d: d, http: &http.Client{Jar: jar, Transport: tr, Timeout: d.http.Timeout}}
	resp, err := c.http.Get(d.web + "/api/session")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s struct{ CSRF string }
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || s.CSRF == "" {
		t.Fatalf("session: %v %+v", err, s)
	}
	c.csrf = s.CSRF
	return c
}

// login posts password and returns the status code.
func (c *loginClient) login(t *testing.T, password string) int {
	body, _ := json.Marshal(map[string]string{"password": password})
	req, _ := http.NewRequest("POST", c.d.web+"/api/login", strings.NewReader(string(body)))
	req.Header.Set("X-CSRF-Token", c.csrf)
	resp, err := c.http.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
