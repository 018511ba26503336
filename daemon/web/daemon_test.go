package web_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/internal/daemontest"
	"github.com/sipedge/sipedge/daemon/web"
	"github.com/sipedge/sipedge/hal/testenv"
)

// core is a tiny SIP Core on loopback UDP: it answers every OPTIONS 200
// (enough for the balancer's probe) until stopped.
type core struct {
	conn *net.UDPConn
	addr string
	wg   sync.WaitGroup
}

func startCore(t *testing.T) *core {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	c := &core{conn: pc, addr: pc.LocalAddr().String()}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if resp := answerOptions(buf[:n]); resp != nil {
				pc.WriteToUDP(resp, from)
			}
		}
	}()
	t.Cleanup(c.stop)
	return c
}

func (c *core) stop() { c.conn.Close(); c.wg.Wait() }

// answerOptions builds a 200 OK to an OPTIONS request (nil otherwise).
func answerOptions(req []byte) []byte {
	lines := strings.Split(string(req), "\r\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "OPTIONS ") {
		return nil
	}
	var b bytes.Buffer
	b.WriteString("SIP/2.0 200 OK\r\n")
	for _, l := range lines[1:] {
		name, _, _ := strings.Cut(l, ":")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "via", "v", "from", "f", "call-id", "i", "cseq":
			b.WriteString(l + "\r\n")
		case "to", "t":
			b.WriteString(l + ";tag=core\r\n")
		}
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.Bytes()
}

// daemon is `sipedge run` with the web page on a free loopback port,
// over HTTPS with its self-signed certificate.
type daemon struct {
	*daemontest.Daemon
	t    *testing.T
	web  string       // https://127.0.0.1:port
	sip  string       // the balancer's UDP listener, 127.0.0.1:port
	info web.Info     // ctl web
	http *http.Client // trusts exactly the certificate ctl web names
}

func startDaemon(t *testing.T, cores ...*core) *daemon {
	t.Helper()
	webPort, sipPort := testenv.FreePort(t), testenv.FreePort(t)
	var cs strings.Builder
	for i, c := range cores {
		fmt.Fprintf(&cs, "    - {name: core%d, address: %q, weight: 1, max_calls: 100}\n", i+1, c.addr)
	}
	if len(cores) == 0 {
		cs.WriteString("    []\n")
	}
	dd := daemontest.New(t)
	dd.WriteConfig(fmt.Sprintf(`node: {name: edge-web, profile: single, platform: generic-x86_64, data_dir: %q}
log: {level: info, format: text}
web: {listen: "127.0.0.1:%d", open_to: [127.0.0.0/8], tls: {}}
sip:
  listen: ["udp:127.0.0.1:%d"]
  probe: {interval: 300ms, timeout: 250ms, down_after: 2, up_after: 1, codes: [200]}
  cores:
%s`, dd.DataDir(), webPort, sipPort, cs.String()))
	d := &daemon{Daemon: dd.Start(), t: t, web: fmt.Sprintf("https://127.0.0.1:%d", webPort), sip: fmt.Sprintf("127.0.0.1:%d", sipPort)}
	waitFor(t, "ctl web", 20*time.Second, func() bool {
		out, _, code := d.Ctl("-json", "web")
		return code == 0 && json.Unmarshal([]byte(out), &d.info) == nil && d.info.TLSFingerprint != ""
	})
	d.http = pinnedClient(d.info.TLSFingerprint)
	waitFor(t, "the web page", 20*time.Second, func() bool {
		resp, err := d.http.Get(d.web + "/api/status")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return d
}

// pinnedClient trusts one certificate, named by its SHA-256 fingerprint
// as ctl web shows it (what an operator pins), whatever its names.
func pinnedClient(fingerprint string) *http.Client {
	want := strings.ReplaceAll(fingerprint, ":", "")
	tc := &tls.Config{
		InsecureSkipVerify: true, // replaced by the pin below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("no certificate")
			}
			if sum := sha256.Sum256(raw[0]); !strings.EqualFold(hex.EncodeToString(sum[:]), want) {
				return fmt.Errorf("certificate SHA-256 %X is not the pinned %s", sum, fingerprint)
			}
			return nil
		},
	}
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
}

// ctl runs `sipedge ctl -config F args...` with stdin and returns stdout.
func (d *daemon) ctl(stdin string, args ...string) string {
	d.t.Helper()
	out, errOut, code := d.CtlIn(stdin, args...)
	if code != 0 {
		d.t.Fatalf("sipedge ctl %v: exit %d\n%s%s", args, code, out, errOut)
	}
	return out
}

// waitFor polls cond until it holds or the time is up.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	daemontest.WaitFor(t, within, what, cond)
}
