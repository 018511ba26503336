package console

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// alarmClient is a daemon with one standing alarm in its status.
type alarmClient struct{ msg string }

func (f alarmClient) Call(_ context.Context, method string, _, result any) error {
	var answer any = map[string]any{}
	switch method {
	case "help":
		answer = map[string]string{"status": "", "config.show": ""}
	case "config.show":
		answer = map[string]string{"yaml": "node: {name: box-a}\n"}
	case "status":
		answer = map[string]any{"alarms": []map[string]string{{"id": "vip.placement.db", "severity": "warning", "message": f.msg}}}
	}
	if result == nil {
		return nil
	}
	b, _ := json.Marshal(answer)
	return json.Unmarshal(b, result)
}

// TestBannerShowsAlarms: each standing alarm of ctl status is on the
// banner, in full, wrapped to the console's width.
func TestBannerShowsAlarms(t *testing.T) {
	msg := "VIP db cannot move between the boxes: the peer 192.0.2.11 does not answer ARP on eth1 (different layer-2 segments?); set vips[].peer_address"
	var out bytes.Buffer
	err := Run(context.Background(), Options{In: strings.NewReader("0\n"), Out: &out, Client: alarmClient{msg}, AllowExit: true, Shell: "-",
		Hostname: func() (string, error) { return "box-a", nil }})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(out.String(), "\n") {
		if len(l) > Width {
			t.Errorf("line over %d columns: %q", Width, l)
		}
		if strings.HasPrefix(l, " ALARM ") || strings.HasPrefix(l, "       ") && got != nil {
			got = append(got, strings.TrimSpace(strings.TrimPrefix(l, " ALARM ")))
		}
	}
	if strings.Join(got, " ") != msg {
		t.Errorf("alarm on the banner %q, want %q:\n%s", strings.Join(got, " "), msg, out.String())
	}
}

func TestWrapWords(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want []string
	}{
		{"short", 10, []string{"short"}},
		{"one two three", 7, []string{"one two", "three"}},
		{"averyverylongword x", 6, []string{"averyv", "erylon", "gword", "x"}},
	} {
		if got := wrapWords(c.in, c.n); strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("wrapWords(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}
