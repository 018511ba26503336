package web_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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

// daemon is `sipedge run` with the web page on a free loopback port.
type daemon struct {
	t      *testing.T
	bin    string
	config string
	web    string // http://127.0.0.1:port
}

func startDaemon(t *testing.T, cores ...*core) *daemon {
	t.Helper()
	bin := testenv.SipedgeBinary(t)
	dir := t.TempDir()
	webPort, sipPort := testenv.FreePort(t), testenv.FreePort(t)
	var cs strings.Builder
	for i, c := range cores {
		fmt.Fprintf(&cs, "    - {name: core%d, address: %q, weight: 1, max_calls: 100}\n", i+1, c.addr)
	}
	if len(cores) == 0 {
		cs.WriteString("    []\n")
	}
	cfg := fmt.Sprintf(`node: {name: edge-web, profile: single, platform: generic-x86_64, data_dir: %q}
log: {level: info, format: text}
web: {listen: "127.0.0.1:%d", open_to: [127.0.0.0/8]}
sip:
  listen: ["udp:127.0.0.1:%d"]
  probe: {interval: 300ms, timeout: 250ms, down_after: 2, up_after: 1, codes: [200]}
  cores:
%s`, filepath.Join(dir, "data"), webPort, sipPort, cs.String())
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "daemon.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "-config", path)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		log.Close()
		if t.Failed() {
			data, _ := os.ReadFile(log.Name())
			t.Logf("daemon log:\n%s", data)
		}
	})
	d := &daemon{t: t, bin: bin, config: path, web: fmt.Sprintf("http://127.0.0.1:%d", webPort)}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(d.web + "/api/status")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return d
			}
		}
		select {
		case <-done:
			t.Fatalf("daemon exited before serving the web page")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("web page not up within 20s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ctl runs `sipedge ctl -config F args...` with stdin and returns stdout.
func (d *daemon) ctl(stdin string, args ...string) string {
	d.t.Helper()
	cmd := exec.Command(d.bin, append([]string{"ctl", "-config", d.config}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		d.t.Fatalf("sipedge ctl %v: %v\n%s%s", args, err, out.String(), errb.String())
	}
	return out.String()
}

// waitFor polls cond until it holds or the time is up.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %s waiting for %s", within, what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
