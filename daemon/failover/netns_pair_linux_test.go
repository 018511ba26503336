package failover

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sipedge/sipedge/daemon/internal/daemontest"
	"github.com/sipedge/sipedge/hal/testenv"
)

// pairView is the part of `ctl pair` the tests read (package pair
// imports this one: its types cannot be used here).
type pairView struct {
	Boxes []struct {
		Node             string     `json:"node"`
		Self             bool       `json:"self"`
		Role             string     `json:"role"`
		Reachable        bool       `json:"reachable"`
		UnreachableSince *time.Time `json:"unreachable_since"`
		LastHeard        *time.Time `json:"last_heard"`
		Groups           []struct {
			Name, State, Holder string
		} `json:"groups"`
		Summary *struct {
			Version string `json:"v"`
			Kind    string `json:"k"`
			Total   int    `json:"ct"`
			Replica string `json:"r"`
		} `json:"summary"`
	} `json:"boxes"`
}

func (l *lab) pair(b *box) pairView {
	l.t.Helper()
	var v pairView
	out, err := exec.Command(sipedgeBinary(l.t), "ctl", "-config", b.cfg, "-json", "pair").Output()
	if err == nil {
		json.Unmarshal(out, &v)
	}
	return v
}

// TestNetnsPair: two edge boxes of this release in network namespaces.
// Each box's `ctl pair` shows both: itself and the peer with the
// summary the peer sent in its heartbeats (version, kind, Cores,
// replication), the VIP group's state on each and its holder. The status
// page of box A, in headless Chromium, shows the pair section; when B is
// killed, the page and `ctl pair` say "peer unreachable since" B's last
// heartbeat; when B is back, it is up again.
func TestNetnsPair(t *testing.T) {
	testenv.MustHaveNetns(t)
	chromium := testenv.MustHaveChromium(t)
	testenv.Short(t, "runs two daemons in network namespaces and a browser")
	sipedgeBinary(t)
	l := newLabNamed(t, "p18p")
	l.deadtime, l.initdead = "1s", "2s"
	cfgA := l.edgeConfig("edge-a", "192.0.2.11", "192.0.2.12", "main", 150)
	f, err := os.OpenFile(cfgA, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, `web: {listen: "192.0.2.11:43080", open_to: [192.0.2.0/24], plain_http: true}`)
	fmt.Fprintln(f, `console: {login: false}`)
	f.Close()
	A := &box{name: "edge-a", ns: l.a, cfg: cfgA}
	B := &box{name: "edge-b", ns: l.b, cfg: l.edgeConfig("edge-b", "192.0.2.12", "192.0.2.11", "backup", 100)}
	l.start(A)
	l.start(B)
	l.waitState(A, "master", 15*time.Second)
	l.waitState(B, "backup", 5*time.Second)

	both := func(b *box, peer string) pairView {
		t.Helper()
		var v pairView
		deadline := time.Now().Add(10 * time.Second)
		for {
			v = l.pair(b)
			if len(v.Boxes) == 2 && v.Boxes[1].Node == peer && v.Boxes[1].Summary != nil && v.Boxes[1].Reachable {
				return v
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: ctl pair %+v, want itself and %s with its summary\n%s", b.name, v, peer, l.tail(b))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	va, vb := both(A, "edge-b"), both(B, "edge-a")
	for _, c := range []struct {
		v          pairView
		self, peer string
		selfState  string
		peerState  string
	}{{va, "edge-a", "edge-b", "master", "backup"}, {vb, "edge-b", "edge-a", "backup", "master"}} {
		me, p := c.v.Boxes[0], c.v.Boxes[1]
		if !me.Self || me.Node != c.self || p.Self {
			t.Errorf("%s: boxes %+v", c.self, c.v.Boxes)
		}
		if p.Summary.Version == "" || p.Summary.Kind != "edge" || p.Summary.Total != 2 || p.LastHeard == nil {
			t.Errorf("%s sees %s's summary %+v, last heard %v", c.self, c.peer, p.Summary, p.LastHeard)
		}
		if len(me.Groups) != 1 || me.Groups[0].State != c.selfState || me.Groups[0].Holder != "edge-a" ||
			len(p.Groups) != 1 || p.Groups[0].State != c.peerState || p.Groups[0].Holder != "edge-a" {
			t.Errorf("%s: groups %+v / %+v", c.self, me.Groups, p.Groups)
		}
	}
	text := l.ctl(B, "pair")
	t.Logf("ctl pair on B:\n%s", text)
	for _, want := range []string{"edge-b (this)", "edge-a (peer)", "master, holder edge-a", "backup, holder edge-a", "of 2 up", "ago"} {
		if !strings.Contains(text, want) {
			t.Errorf("ctl pair on B lacks %q", want)
		}
	}

	// A's console banner shows both boxes.
	banner := l.consoleBanner(A)
	t.Logf("A's console:\n%s", banner)
	if !strings.Contains(banner, "edge-b (peer)") || !strings.Contains(banner, "master, holder edge-a") {
		t.Error("A's console banner lacks the pair")
	}

	// The page of A, through a forwarder into A's namespace.
	web := forwardInto(t, l.a, "192.0.2.11:43080")
	ctx := daemontest.Browser(t, chromium, "")
	peerCell := `#pair tr[data-row="state"] td[data-box="peer"]`
	if err := chromedp.Do(ctx,
		chromedp.Navigate("http://"+web+"/"),
		chromedp.WaitVisible(chromedp.CSS(peerCell+" .state.up")),
	); err != nil {
		t.Fatalf("page of A: no pair section with B up: %v", err)
	}
	section, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#pair-section")))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"edge-a (this box)", "edge-b (peer)", "VIP sip", "holder edge-a", "of 2 up", "last heartbeat"} {
		if !strings.Contains(section, want) {
			t.Errorf("pair section lacks %q:\n%s", want, section)
		}
	}

	// A's charts mark the moment it took the VIP on the time axis.
	if err := chromedp.Do(ctx, chromedp.WaitReady(chromedp.CSS(`#charts line.vip-event[data-group="sip"][data-state="master"]`))); err != nil {
		t.Errorf("page of A: no VIP event marked on the charts: %v", err)
	}

	// B dies: A's page and ctl pair say since when it is unreachable.
	killed := time.Now()
	l.stop(B, syscall.SIGKILL)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(peerCell+" .unreachable"))); err != nil {
		t.Fatalf("page of A: B not shown unreachable: %v", err)
	}
	t.Logf("page shows B unreachable %v after the kill (deadtime 1 s, page polls 1 s)", time.Since(killed).Round(10*time.Millisecond))
	cell, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(peerCell)))
	if !strings.Contains(cell, "peer unreachable since") {
		t.Errorf("page of A: B's state %q", cell)
	}
	v := l.pair(A)
	if len(v.Boxes) != 2 || v.Boxes[1].Reachable || v.Boxes[1].UnreachableSince == nil ||
		v.Boxes[1].UnreachableSince.Before(killed.Add(-time.Second)) || v.Boxes[1].UnreachableSince.After(killed) {
		t.Errorf("ctl pair on A after B was killed at %v: %+v", killed.Format(time.StampMilli), v.Boxes)
	}
	if text := l.ctl(A, "pair"); !strings.Contains(text, "UNREACHABLE since") {
		t.Errorf("ctl pair on A after B was killed:\n%s", text)
	}
	if banner := l.consoleBanner(A); !strings.Contains(banner, "UNREACHABLE since") {
		t.Errorf("A's console banner after B was killed:\n%s", banner)
	}

	// B is back.
	l.start(B)
	l.waitState(B, "backup", 10*time.Second)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(peerCell+" .state.up"))); err != nil {
		t.Fatalf("page of A: B not shown up again: %v", err)
	}
}

// consoleBanner runs b's serial console menu (console.login off) on a
// pipe, leaves at once and returns what it printed.
func (l *lab) consoleBanner(b *box) string {
	l.t.Helper()
	cmd := exec.Command(sipedgeBinary(l.t), "console", "-config", b.cfg, "-shell", "-")
	cmd.Stdin = strings.NewReader("0\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		l.t.Errorf("sipedge console on %s: %v\n%s", b.name, err, out)
	}
	return string(out)
}

// forwardInto listens on 127.0.0.1 (the host's) and forwards each
// connection to target inside namespace ns; it returns the listener's
// address. The browser runs on the host.
func forwardInto(t *testing.T, ns, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			var up net.Conn
			if err := testenv.InNetns(ns, func() error {
				var err error
				up, err = net.DialTimeout("tcp", target, 5*time.Second)
				return err
			}); err != nil {
				c.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(up, c); up.Close() }()
			go func() { defer wg.Done(); io.Copy(c, up); c.Close() }()
		}
	}()
	return ln.Addr().String()
}
