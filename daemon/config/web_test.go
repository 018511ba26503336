package config

import (
	"errors"
	"strings"
	"testing"
)

const webNode = "node: {name: t, data_dir: /tmp/x}\nsip: {listen: [\"udp:127.0.0.1:5060\"]}\n"

// TestWebPlainHTTPOffLoopback: a file written before web.tls keeps
// loading (the box keeps working) but carries warnings that `config
// validate` fails on.
func TestWebPlainHTTPOffLoopback(t *testing.T) {
	c, err := Load("testdata/good-ha-pair.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got := c.Warnings.Error()
	for _, want := range []string{"good-ha-pair.yaml:11: web.listen: plain HTTP on 192.0.2.11:8080", "good-ha-pair.yaml:11: web.admin_from: not set"} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings lack %q:\n%s", want, got)
		}
	}
	if c.Web.AdminFromSet || len(c.Web.AdminFrom) != 2 || !c.Web.AdminFrom[0].Addr().IsLoopback() {
		t.Errorf("admin_from = %v (set %v), want loopback by default", c.Web.AdminFrom, c.Web.AdminFromSet)
	}
}

func TestWebGood(t *testing.T) {
	for _, tc := range []struct {
		name, web string
		https     bool
		operator  bool
	}{
		{"embedded default", "", false, false},
		{"self-signed", `{listen: "192.0.2.11:443", open_to: [192.0.2.0/24], admin_from: [192.0.2.0/28], tls: {}}`, true, false},
		{"operator cert", `{listen: "192.0.2.11:443", admin_from: [192.0.2.5/32], tls: {cert: /data/web.crt, key: /data/web.key}, names: [edge-a.example.net, 198.51.100.11]}`, true, true},
		{"plain HTTP accepted", `{listen: "0.0.0.0:8080", open_to: [192.0.2.0/24], admin_from: [192.0.2.0/28], plain_http: true}`, false, false},
		{"plain HTTP only loopback may use", `{listen: "0.0.0.0:8080", open_to: [127.0.0.0/8]}`, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c *Config
			var err error
			if tc.web == "" {
				c = Default()
			} else {
				c, err = Parse("t.yaml", []byte(webNode+"web: "+tc.web+"\n"))
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Warnings) > 0 {
				t.Errorf("warnings: %v", c.Warnings)
			}
			if c.Web.HTTPS() != tc.https || c.Web.OperatorCert() != tc.operator {
				t.Errorf("HTTPS %v operator cert %v, want %v %v", c.Web.HTTPS(), c.Web.OperatorCert(), tc.https, tc.operator)
			}
		})
	}
}

func TestWebBad(t *testing.T) {
	for _, tc := range []struct{ web, want string }{
		{`{listen: "192.0.2.11:443", tls: {cert: /data/web.crt}}`, "t.yaml:3: web.tls: give both cert and key"},
		{`{listen: "192.0.2.11:443", tls: {}, plain_http: true}`, "web.plain_http: web.tls is set"},
		{`{listen: "192.0.2.11:443", tls: {}, names: ["https://edge-a"]}`, `web.names[0]: "https://edge-a": want a host name`},
		{`{listen: "192.0.2.11:443", tls: {}, names: ["edge-a:443"]}`, `web.names[0]: "edge-a:443"`},
		{`{listen: "192.0.2.11:443", tls: {}, admin_from: [192.0.2.300/24]}`, `web.admin_from[0]: want an address with its prefix length`},
	} {
		_, err := Parse("t.yaml", []byte(webNode+"web: "+tc.web+"\n"))
		var ps Problems
		if !errors.As(err, &ps) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.web, err, tc.want)
		}
	}
}
