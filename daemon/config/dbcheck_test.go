package config

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

const dbBox = `node: {profile: four-box}
cluster: {listen: "192.0.2.97:694", peer: "192.0.2.98:694"}
vips:
  - name: db
    address: 192.0.2.110/27
    interface: eth0
    role: main
    track: [{mysql: {address: "127.0.0.1:3306", user: probe, password_file: /data/probe.pw, writable: true, timeout: 500ms}}]
  - name: dbr
    address: 192.0.2.111/27
    interface: eth0
    role: main
    follows: {group: db}
    track: [{mysql: {address: "127.0.0.1:3306", user: probe, query: "SELECT @@server_id", max_lag: 30s}}]
`

// TestMySQLTrackAndFollows (issue 18 items 3, 4): the four-box DB box's
// writer and reader VIPs parse; what is wrong with them is said.
func TestMySQLTrackAndFollows(t *testing.T) {
	c, err := Parse("db.yaml", []byte(dbBox))
	if err != nil {
		t.Fatal(err)
	}
	m := c.VIPs[0].Track[0].MySQL
	if m == nil || m.Address != "127.0.0.1:3306" || m.User != "probe" || !m.Writable || m.Timeout.D() != 500*time.Millisecond {
		t.Errorf("mysql track %+v", m)
	}
	if f := c.VIPs[1].Follows; f == nil || f.Group != "db" || f.On != "peer" {
		t.Errorf("follows %+v, want db on peer", f)
	}
	for _, tc := range []struct{ from, to, want string }{
		{`follows: {group: db}`, `follows: {group: nope}`, `vips[1].follows.group: "nope": no such VIP group`},
		{`follows: {group: db}`, `follows: {group: dbr}`, `a group cannot follow itself`},
		{`follows: {group: db}`, `follows: {group: db, on: self}`, `"self": only peer`},
		{`user: probe, query`, `query`, `vips[1].track[0].mysql.user: must be set`},
		{`address: "127.0.0.1:3306", user: probe, query`, `address: "db:3306", user: probe, query`, `names are not resolved`},
		{`max_lag: 30s`, `max_lag: 30s, writable: true`, `a reader VIP (follows:) accepts a read-only database`},
		{`max_lag: 30s}}]`, `max_lag: 30s}, tcp: "127.0.0.1:3306"}]`, `set exactly one of sip_options, link, tcp, mysql`},
		{`SELECT @@server_id`, strings.Repeat("x", 1025), `1025 bytes: at most 1024`},
	} {
		bad := strings.Replace(dbBox, tc.from, tc.to, 1)
		_, err := Parse("bad.yaml", []byte(bad))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.to, err, tc.want)
		}
	}
}

// TestREADMEWorkedExample: the configurations of the top README's
// worked example parse and validate without a warning.
func TestREADMEWorkedExample(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(data), "### Worked example")
	if !ok {
		t.Fatal("README has no worked example")
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	n := 0
	for _, block := range strings.Split(sec, "```yaml\n")[1:] {
		y, _, _ := strings.Cut(block, "```")
		n++
		c, err := Parse(fmt.Sprintf("README example %d", n), []byte(y))
		if err != nil {
			t.Errorf("README example %d:\n%s\n%v", n, y, err)
			continue
		}
		if len(c.Warnings) > 0 {
			t.Errorf("README example %d: warnings %v", n, c.Warnings)
		}
	}
	if n != 2 {
		t.Errorf("%d YAML examples, want 2 (an edge box, a DB box)", n)
	}
}
