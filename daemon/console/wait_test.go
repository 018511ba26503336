package console

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/ctl"
	"github.com/sipedge/sipedge/daemon/failover"
	"github.com/sipedge/sipedge/daemon/pair"
)

// bootClient is a daemon that starts answering at up (before, its
// socket refuses, as at boot), with no console login and a peer box.
type bootClient struct {
	up    time.Time
	calls int
}

func (b *bootClient) Call(ctx context.Context, method string, params, result any) error {
	b.calls++
	if time.Now().Before(b.up) {
		return ctl.Errorf(ctl.CodeUnreachable, "no daemon answers on /data/sipedge.sock: connection refused")
	}
	l := &loginClient{}
	switch method {
	case MethodSession:
		return l.answer(SessionInfo{LoginRequired: false}, result)
	case "help":
		return l.answer(map[string]string{MethodSession: "", "config.show": "", pair.MethodPair: ""}, result)
	case "config.show":
		return l.answer(map[string]string{"yaml": "node: {name: edge-a, profile: single}\nsip: {listen: [\"udp:127.0.0.1:5060\"], cores: [{name: c1, address: \"127.0.0.1:5070\"}]}\n"}, result)
	case pair.MethodPair:
		lost := time.Now().Add(-time.Minute)
		st := failover.Status{Node: "edge-a", Groups: []failover.GroupInfo{{Name: "sip", Role: "main", State: "master", Holder: "edge-a"}}}
		v := pair.Build(pair.Summary{Version: "v2", Kind: "edge", Calls: 12, CoresUp: 2, CoresTotal: 2}, st,
			[]failover.PairPeer{{Node: "edge-b", LastHeard: lost, Ago: time.Minute, UnreachableSince: &lost,
				Groups: []failover.PairGroup{{Name: "sip", State: "backup"}}}})
		return l.answer(v, result)
	}
	return l.Call(ctx, method, params, result)
}

// TestFirstBannerWaitsForDaemon: a console started before its daemon
// (as at boot) waits for it, then shows the banner with the pair: no
// "does not answer", no "NOT ANSWERING". A daemon that never comes is
// given up after DaemonWait, as before.
func TestFirstBannerWaitsForDaemon(t *testing.T) {
	cl := &bootClient{up: time.Now().Add(1500 * time.Millisecond)}
	var out bytes.Buffer
	start := time.Now()
	if err := Run(context.Background(), Options{In: strings.NewReader("0\n"), Out: &out, Client: cl, AllowExit: true, Shell: "-",
		Hostname: func() (string, error) { return "box", nil }}); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	t.Logf("session took %v, %d calls:\n%s", time.Since(start).Round(time.Millisecond), cl.calls, s)
	for _, bad := range []string{"does not answer", "NOT ANSWERING"} {
		if strings.Contains(s, bad) {
			t.Errorf("the console said %q while the daemon started", bad)
		}
	}
	for _, want := range []string{"Waiting for the daemon to start (at most 30s)... the daemon answers.", "node edge-a",
		"edge-a (this)", "edge-b (peer)", "UNREACHABLE since", "master, holder edge-a", "12, Cores 2 of 2 up", "main, v2"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if cl.calls > 30 {
		t.Errorf("%d calls while waiting 1.5 s: poll more gently", cl.calls)
	}
	for _, l := range strings.Split(s, "\n") {
		if len([]rune(l)) > Width-1 {
			t.Errorf("line wider than %d: %q", Width-1, l)
		}
	}

	// Never up: given up after DaemonWait, then the login says so.
	never := &bootClient{up: time.Now().Add(time.Hour)}
	out.Reset()
	start = time.Now()
	Run(context.Background(), Options{In: strings.NewReader(""), Out: &out, Client: never, AllowExit: true, Shell: "-", DaemonWait: 500 * time.Millisecond})
	if d := time.Since(start); d > 5*time.Second || !strings.Contains(out.String(), "no answer after 500ms") || !strings.Contains(out.String(), "does not answer") {
		t.Errorf("a daemon that never answers (%v):\n%s", d, out.String())
	}
}

// answer marshals v into result as the socket client would.
func (l *loginClient) answer(v, result any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, result)
}
