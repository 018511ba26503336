package failover

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sipedge/sipedge/hal"
)

// sipResponder answers every OPTIONS with code, copying the Call-ID.
func sipResponder(t *testing.T, code string) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			var callID string
			for _, l := range strings.Split(string(buf[:n]), "\r\n") {
				if v, ok := strings.CutPrefix(l, "Call-ID: "); ok {
					callID = v
				}
			}
			// A stray response first (another Call-ID), then ours.
			c.WriteTo([]byte("SIP/2.0 200 OK\r\nCall-ID: other\r\n\r\n"), from)
			c.WriteTo([]byte("SIP/2.0 "+code+"\r\nCall-ID: "+callID+"\r\nContent-Length: 0\r\n\r\n"), from)
		}
	}()
	return c.LocalAddr().String()
}

func TestProbe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := closed.Addr().String()
	closed.Close()
	silent, _ := net.ListenPacket("udp", "127.0.0.1:0")
	defer silent.Close()

	links := hal.NewFake("eth0", "eth1")
	links.SetLinkUp("eth0", true)
	for _, tc := range []struct {
		name string
		opt  TrackOptions
		ok   bool
	}{
		{"tcp-open", TrackOptions{Kind: CheckTCP, Target: ln.Addr().String()}, true},
		{"tcp-closed", TrackOptions{Kind: CheckTCP, Target: closedAddr}, false},
		{"sip-200", TrackOptions{Kind: CheckSIPOptions, Target: sipResponder(t, "200 OK")}, true},
		{"sip-404", TrackOptions{Kind: CheckSIPOptions, Target: sipResponder(t, "404 Not Found")}, true},
		{"sip-503", TrackOptions{Kind: CheckSIPOptions, Target: sipResponder(t, "503 Service Unavailable")}, false},
		{"sip-silent", TrackOptions{Kind: CheckSIPOptions, Target: silent.LocalAddr().String()}, false},
		{"link-up", TrackOptions{Kind: CheckLink, Target: "eth0"}, true},
		{"link-admin-down", TrackOptions{Kind: CheckLink, Target: "eth1"}, false},
		{"link-missing", TrackOptions{Kind: CheckLink, Target: "eth9"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A probe that must pass gets room for a busy host; one that
			// must fail (the silent responder) is cut short.
			wait := 5 * time.Second
			if !tc.ok {
				wait = 300 * time.Millisecond
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			err := probe(ctx, tc.opt, links)
			if (err == nil) != tc.ok {
				t.Errorf("probe = %v, want ok %v", err, tc.ok)
			}
		})
	}
	// Carrier loss on an up link.
	links.SetCarrier("eth0", false)
	if err := probe(context.Background(), TrackOptions{Kind: CheckLink, Target: "eth0"}, links); err == nil {
		t.Error("link check passed without carrier")
	}
}

// TestChecksDriveFailover runs the real check loop against a TCP service
// that goes away: the group goes to fault.
func TestChecksDriveFailover(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	f := hal.NewFake("eth0")
	g := groupOpts(RoleMain, 150)
	// Each check may take its whole interval (the timeout) before it
	// counts as failed: 500 ms, so a busy host does not fail a live
	// service twice in a row (fall 2).
	g.Track = []TrackOptions{{Kind: CheckTCP, Target: addr, Interval: 500 * time.Millisecond}}
	m, err := New(Options{Node: "a", Key: testKey, Interval: 100 * time.Millisecond, Groups: []GroupOptions{g}}, f, f)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.start(time.Now()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m.runChecks(ctx)
	time.Sleep(100 * time.Millisecond)
	if st := m.Status().Groups[0]; st.State != "init" || !st.Checks[0].OK {
		t.Fatalf("with the service up: %+v", st)
	}
	ln.Close()
	deadline := time.Now().Add(10 * time.Second) // two failed checks: about 1 s
	for m.Status().Groups[0].State != "fault" {
		if time.Now().After(deadline) {
			t.Fatalf("no fault 10 s after the service died: %+v", m.Status().Groups[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNotify(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	script := filepath.Join(dir, "notify.sh")
	os.WriteFile(script, []byte("#!/bin/sh\necho \"$1 $2 $3 [$SIPEDGE_VIP_REASON]\" >> "+out+"\n"), 0o755)
	slow := filepath.Join(dir, "slow.sh")
	os.WriteFile(slow, []byte("#!/bin/sh\nexec sleep 30\n"), 0o755)

	s := newSim(t)
	g := groupOpts(RoleMain, 150)
	g.Notify = script
	a := s.add("edge-a", g)
	s.boot(a)
	s.run(time.Second) // initdead, then master
	a.m.notifier.wait()
	b, _ := os.ReadFile(out)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "sip backup init [initdead expired") || !strings.HasPrefix(lines[1], "sip master backup [") {
		t.Errorf("notify calls:\n%s", b)
	}

	// A notify program that hangs is killed at its timeout.
	n := newNotifier(testLogger(t))
	start := time.Now()
	n.run(slow, 100*time.Millisecond, "sip", "master", "backup", "test")
	n.wait()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("hung notify took %v, want killed at 100 ms", d)
	}
}
