package console

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/sipedge/sipedge/daemon/timesync"
)

// loginClient is a daemon whose console login is on, with a password
// ("right pw") and a web certificate.
type loginClient struct{ logins []string }

const testFingerprint = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"

func (l *loginClient) Call(_ context.Context, method string, params, result any) error {
	var answer any = map[string]any{}
	switch method {
	case "help":
		answer = map[string]string{MethodSession: "", MethodLogin: "", methodWeb: "", timesync.MethodTime: ""}
	case timesync.MethodTime:
		answer = timesync.Status{Servers: []string{"192.0.2.1:123"}, Synced: true, Server: "192.0.2.1:123", OffsetSeconds: 0.0012, LastAction: "slew"}
	case MethodSession:
		answer = SessionInfo{LoginRequired: true, PasswordSet: true, IdleLogoutSeconds: 600}
	case methodWeb:
		answer = map[string]string{"tls_fingerprint": testFingerprint}
	case MethodLogin:
		b, _ := json.Marshal(params)
		var q struct{ Password string }
		json.Unmarshal(b, &q)
		l.logins = append(l.logins, q.Password)
		answer = LoginResult{OK: q.Password == "right pw", Failures: len(l.logins)}
	}
	b, _ := json.Marshal(answer)
	return json.Unmarshal(b, result)
}

// TestLoginBanner: before the login, the certificate's fingerprint (for
// pinning) fits the 80 columns; a wrong password gets no menu.
func TestLoginBanner(t *testing.T) {
	cl := &loginClient{}
	var out bytes.Buffer
	err := Run(context.Background(), Options{In: strings.NewReader("wrong\nright pw\n0\n"), Out: &out, Client: cl, AllowExit: true, Shell: "-",
		Hostname: func() (string, error) { return "box", nil }})
	if err != nil {
		t.Fatal(err)
	}
	s := out.String()
	pre, post, ok := strings.Cut(s, "Login incorrect.")
	if !ok {
		t.Fatalf("no refusal:\n%s", s)
	}
	if strings.Contains(pre, "Status") || !strings.Contains(pre, "web certificate SHA-256:") {
		t.Errorf("before the login:\n%s", pre)
	}
	if got := strings.Join(strings.Fields(strings.ReplaceAll(pre[strings.Index(pre, "SHA-256:")+8:strings.LastIndex(pre, "====")], "=", "")), ""); !strings.HasPrefix(got, testFingerprint) {
		t.Errorf("fingerprint shown as %q", got)
	}
	for _, l := range strings.Split(pre, "\n") {
		if len([]rune(l)) > Width-1 {
			t.Errorf("line wider than %d: %q", Width-1, l)
		}
	}
	if !strings.Contains(post, " time: synchronised to 192.0.2.1:123 (last poll: offset 1ms, slew)") || strings.Contains(pre, "time:") {
		t.Errorf("the clock's state is not on the banner after the login (and only there):\n%s", s)
	}
	if !strings.Contains(post, "1) Status") || !strings.Contains(post, "Bye.") || len(cl.logins) != 2 {
		t.Errorf("after the right password (logins %q):\n%s", cl.logins, post)
	}
}
