package config

import (
	"strings"
	"testing"
	"time"
)

// TestRelayAndCaps: security.relay defaults to dialogs (closed); open is
// accepted, flagged in Warnings and at the head of Marshal (`ctl config
// show`); anything else is refused. The sip.caps defaults and bounds.
func TestRelayAndCaps(t *testing.T) {
	c, err := Parse("default.yaml", []byte("sip:\n  listen: [\"udp:127.0.0.1:5060\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Security.Relay != "dialogs" || len(c.Unsafe()) != 0 {
		t.Errorf("default relay %q, warnings %v", c.Security.Relay, c.Unsafe())
	}
	want := Caps{Dialogs: 150_000, Transactions: 200_000, Branches: 200_000, SessionExpires: Duration(2 * time.Hour)}
	if c.SIP.Caps != want {
		t.Errorf("caps %+v, want %+v", c.SIP.Caps, want)
	}
	if b, _ := Marshal(c); strings.Contains(string(b), "WARNING") {
		t.Errorf("default config shown with a warning:\n%s", b)
	}

	open, err := Parse("open.yaml", []byte("sip:\n  listen: [\"udp:127.0.0.1:5060\"]\nsecurity:\n  relay: open\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Marshal(open)
	if err != nil {
		t.Fatal(err)
	}
	if len(open.Unsafe()) != 1 || !strings.HasPrefix(string(b), "# WARNING: security.relay: open makes the balancer an open relay") {
		t.Errorf("open relay not flagged: %v\n%s", open.Unsafe(), b)
	}
	if again, err := Parse("shown", b); err != nil || again.Security.Relay != "open" {
		t.Errorf("shown config does not parse back: %v", err)
	}

	for _, bad := range []string{
		"security:\n  relay: closed\n",
		"sip:\n  listen: [\"udp:127.0.0.1:5060\"]\n  caps: {dialogs: 10}\n",
		"sip:\n  listen: [\"udp:127.0.0.1:5060\"]\n  caps: {session_expires: 10s}\n",
	} {
		if _, err := Parse("bad.yaml", []byte("sip:\n  listen: [\"udp:127.0.0.1:5060\"]\n"+strings.TrimPrefix(bad, "sip:\n  listen: [\"udp:127.0.0.1:5060\"]\n"))); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
