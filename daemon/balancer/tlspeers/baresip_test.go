package tlspeers

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/internal/sipptest"
	"github.com/sipedge/sipedge/daemon/tlsconf/tlstest"
	"github.com/sipedge/sipedge/hal/testenv"
)

// baresip (Debian baresip-core 1.0.0, on libre 1.1.0) as a TLS caller:
//
//   - It runs from a config folder of its own (-f): sip_listen on
//     127.0.0.1 (UDP and TCP on the port, TLS on the port + 1: baresip
//     1.0 always puts TLS one above), sip_cafile the test CA,
//     optionally sip_certificate (certificate and key in one PEM file),
//     an accounts file with one account that never registers
//     (regint=0), and the modules g711 (the SIPp Core offers PCMU),
//     account and menu (for the /dial command). No audio module is
//     loaded and audio_player/audio_source are left empty: baresip then
//     starts no player and no source (no sound card needed) and the
//     call still completes.
//   - `-e "/dial URI"` places the call once it is ready; `-t N` quits
//     after N seconds, which hangs the call up with a BYE and waits for
//     its transaction before exiting; `-s` traces every SIP message sent
//     and received (transport, addresses, the message), which the test
//     reads.
//   - baresip 1.0 has no sip_verify_server setting, and libre 1.1.0
//     verifies neither the certificate of a SIP TLS server nor its name
//     (its SIP transport never calls tls_set_verify_server): sip_cafile
//     is loaded but does not make a wrong server certificate fail. So
//     the negative case here is on sipedge's side, where it is real:
//     verify_clients: require refuses a client certificate from another
//     CA.

// baresipOptions place one baresip run.
type baresipOptions struct {
	Target     string        // the URI dialled
	CAFile     string        // sip_cafile
	ClientCert *tlstest.Pair // sip_certificate, when set
	Quit       time.Duration // -t: hang up and quit after this long
	// Refused: sipedge is to refuse the handshake; baresip may then
	// wait for its INVITE's Timer B before quitting, and is stopped.
	Refused bool
}

// baresipRun is what a baresip run printed and the SIP messages it
// traced.
type baresipRun struct {
	Out  string
	Msgs []traceMsg
}

// traceMsg is one SIP message of baresip's -s trace.
type traceMsg struct {
	Transport, Src, Dst string
	Start               string // request or status line
	CSeq                string // the CSeq header's value
}

func (m traceMsg) String() string {
	return fmt.Sprintf("%s %s -> %s %q (CSeq %s)", m.Transport, m.Src, m.Dst, m.Start, m.CSeq)
}

// parseTrace cuts baresip's -s output into messages: each is printed as
// ESC[36;1m "#\n" "TRANSPORT SRC -> DST\n" message ESC[;m.
func parseTrace(out string) []traceMsg {
	var msgs []traceMsg
	blocks := strings.Split(out, "\x1b[36;1m#\n")
	for _, b := range blocks[1:] {
		b, _, _ = strings.Cut(b, "\x1b[;m")
		lines := strings.Split(strings.ReplaceAll(b, "\r\n", "\n"), "\n")
		if len(lines) < 2 {
			continue
		}
		hdr := strings.Fields(lines[0])
		if len(hdr) != 4 || hdr[2] != "->" {
			continue
		}
		m := traceMsg{Transport: hdr[0], Src: hdr[1], Dst: hdr[3], Start: strings.TrimSpace(lines[1])}
		for _, l := range lines[2:] {
			if name, val, ok := strings.Cut(l, ":"); ok && strings.EqualFold(strings.TrimSpace(name), "CSeq") {
				m.CSeq = strings.TrimSpace(val)
				break
			}
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// has reports whether a traced message satisfies ok.
func (r *baresipRun) has(ok func(traceMsg) bool) bool {
	for _, m := range r.Msgs {
		if ok(m) {
			return true
		}
	}
	return false
}

func (r *baresipRun) summary() string {
	var b strings.Builder
	for _, m := range r.Msgs {
		fmt.Fprintf(&b, "  %s\n", m)
	}
	return b.String()
}

// baresipModuleDir finds baresip's module folder (Debian:
// /usr/lib/baresip/modules).
func baresipModuleDir(t *testing.T) string {
	t.Helper()
	so := firstExisting("/usr/lib/baresip/modules/g711.so", "/usr/lib/*/baresip/modules/g711.so",
		"/usr/local/lib/baresip/modules/g711.so")
	if so == "" {
		testenv.Missing(t, "baresip's modules (g711.so) not found: install Debian baresip-core")
	}
	return filepath.Dir(so)
}

// runBaresip runs baresip once with o and returns what it did. It
// fails the test if baresip does not quit by itself in time.
func runBaresip(t *testing.T, o baresipOptions) *baresipRun {
	t.Helper()
	bin := testenv.MustHaveExec(t, "baresip")
	mods := baresipModuleDir(t)
	dir := t.TempDir()
	sipPort := testenv.FreePorts(t, 2) // UDP/TCP on it, TLS on it + 1
	rtp := testenv.FreePorts(t, 4)
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "sip_listen\t\t127.0.0.1:%d\n", sipPort)
	fmt.Fprintf(&cfg, "sip_cafile\t\t%s\n", o.CAFile)
	if o.ClientCert != nil {
		cert, err := os.ReadFile(o.ClientCert.Cert)
		if err != nil {
			t.Fatal(err)
		}
		key, err := os.ReadFile(o.ClientCert.Key)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&cfg, "sip_certificate\t\t%s\n", writeFile(t, dir, "client.pem", string(cert)+string(key)))
	}
	fmt.Fprintf(&cfg, "call_local_timeout\t30\ncall_max_calls\t\t1\n")
	fmt.Fprintf(&cfg, "rtp_ports\t\t%d-%d\nrtp_timeout\t\t0\n", rtp, rtp+3)
	fmt.Fprintf(&cfg, "module_path\t\t%s\n", mods)
	cfg.WriteString("module\t\t\tg711.so\nmodule_app\t\taccount.so\nmodule_app\t\tmenu.so\n")
	writeFile(t, dir, "config", cfg.String())
	writeFile(t, dir, "accounts", "<sip:caller@127.0.0.1>;regint=0;answermode=manual\n")

	quit := max(int(o.Quit.Seconds()), 1)
	p := startPeer(t, "baresip", dir, bin, "-f", dir, "-s", "-e", "/dial "+o.Target, "-t", fmt.Sprint(quit))
	grace := 20 * time.Second
	if o.Refused {
		grace = 5 * time.Second
	}
	switch {
	case p.wait(o.Quit + grace):
	case o.Refused:
		// After a refused handshake libre 1.1.0 does not always see the
		// connection closed: the INVITE's transaction is left to Timer B
		// (32 s), which -t's graceful stop waits for. A second SIGTERM
		// makes baresip exit at once.
		t.Logf("baresip still waits on its INVITE's transaction %v after -t %d (the refused connection unseen): stopping it", grace, quit)
		p.cmd.Process.Signal(syscall.SIGTERM)
		time.Sleep(500 * time.Millisecond)
		p.cmd.Process.Signal(syscall.SIGTERM)
		if !p.wait(10 * time.Second) {
			t.Fatalf("baresip did not exit on SIGTERM")
		}
	default:
		t.Fatalf("baresip did not quit within %v of its -t %d", o.Quit+grace, quit)
	}
	r := &baresipRun{Out: p.Output()}
	r.Msgs = parseTrace(r.Out)
	t.Logf("baresip: %s; exit %v; SIP messages traced:\n%s", baresipVersion(r.Out), p.err, r.summary())
	return r
}

// baresipVersion is the version line baresip printed at start.
func baresipVersion(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "baresip v") {
			return strings.TrimSpace(l)
		}
	}
	return "version not printed"
}

// tlsCallLab is sipedge with a tls: listener in front of one SIPp Core
// on UDP.
type tlsCallLab struct {
	set  tlstest.Set
	core *sipptest.Proc
	edge *edge
}

// newTLSCallLab makes the certificates (a test CA with a server leaf for
// 127.0.0.1 and edge.test, a client leaf, another CA), starts the Core
// and sipedge (mod may change its configuration) and waits for the Core
// to answer a probe.
func newTLSCallLab(t *testing.T, mod func(*edgeConfig, tlstest.Set)) *tlsCallLab {
	t.Helper()
	testenv.MustHaveExec(t, "baresip")
	baresipModuleDir(t)
	testenv.MustHaveSIPp(t)
	l := &tlsCallLab{set: tlstest.NewSet(t, "edge.test", "127.0.0.1")}
	corePort := testenv.FreePort(t)
	l.core = startCore(t, "core1", corePort)
	c := edgeConfig{
		Cert: l.set.Server.Cert, Key: l.set.Server.Key,
		Cores: []coreConfig{{Name: "core1", Address: fmt.Sprintf("127.0.0.1:%d", corePort)}},
	}
	if mod != nil {
		mod(&c, l.set)
	}
	l.edge = startEdge(t, c)
	l.edge.waitCore("core1", "active with a probe answered", 15*time.Second, probed)
	return l
}

// target is the URI baresip dials: the service at sipedge's tls:
// listener.
func (l *tlsCallLab) target() string {
	return fmt.Sprintf("sip:service@%s;transport=tls", l.edge.tlsAddr())
}

// checkCall checks that r made one call over TLS through sipedge that
// was answered and ended with a BYE, and that the Core saw it whole.
func (l *tlsCallLab) checkCall(t *testing.T, r *baresipRun) {
	t.Helper()
	edgeTLS := l.edge.tlsAddr()
	toEdge := func(m traceMsg) bool { return m.Transport == "TLS" && m.Dst == edgeTLS }
	fromEdge := func(m traceMsg) bool { return m.Transport == "TLS" && m.Src == edgeTLS }
	if !r.has(func(m traceMsg) bool { return toEdge(m) && strings.HasPrefix(m.Start, "INVITE sip:service@") }) {
		t.Errorf("baresip sent no INVITE over TLS to %s", edgeTLS)
	}
	if !r.has(func(m traceMsg) bool {
		return fromEdge(m) && strings.HasPrefix(m.Start, "SIP/2.0 200") && strings.HasSuffix(m.CSeq, "INVITE")
	}) {
		t.Errorf("no 200 to the INVITE reached baresip over TLS")
	}
	if !strings.Contains(r.Out, "Call established") {
		t.Errorf("baresip did not say \"Call established\"")
	}
	if !r.has(func(m traceMsg) bool { return toEdge(m) && strings.HasPrefix(m.Start, "ACK ") }) {
		t.Errorf("baresip sent no ACK over TLS")
	}
	if !r.has(func(m traceMsg) bool { return toEdge(m) && strings.HasPrefix(m.Start, "BYE ") }) {
		t.Errorf("baresip sent no BYE over TLS")
	}
	if !r.has(func(m traceMsg) bool {
		return fromEdge(m) && strings.HasPrefix(m.Start, "SIP/2.0 200") && strings.HasSuffix(m.CSeq, "BYE")
	}) {
		t.Errorf("no 200 to the BYE reached baresip over TLS")
	}
	l.core.Stop()
	c := l.core.Counts()
	if c["INVITE_Recv"] != 1 || c["ACK_Recv"] != 1 || c["BYE_Recv"] != 1 {
		t.Errorf("SIPp Core: INVITE %d, ACK %d, BYE %d received; want 1 each (the call whole)",
			c["INVITE_Recv"], c["ACK_Recv"], c["BYE_Recv"])
	}
	st := l.edge.status()
	if st.Stats["tls_handshakes_ok"] < 1 {
		t.Errorf("ctl cores: tls_handshakes_ok %d, want >= 1 (%v)", st.Stats["tls_handshakes_ok"], tlsStats(st.Stats))
	}
	t.Logf("sipedge: %v; Core: %+v", tlsStats(st.Stats), l.edge.core("core1"))
}

// TestBaresipCallOverTLS: baresip calls the service at sipedge's tls:
// listener (certificate for 127.0.0.1 and edge.test from the test CA,
// which is baresip's sip_cafile); sipedge balances the call to a SIPp
// Core on UDP. The 200 reaches baresip over TLS, the call ends with
// baresip's BYE and its 200, the Core sees INVITE, ACK and BYE, and
// sipedge counts the handshake.
func TestBaresipCallOverTLS(t *testing.T) {
	l := newTLSCallLab(t, nil)
	r := runBaresip(t, baresipOptions{Target: l.target(), CAFile: l.set.CA.File, Quit: 5 * time.Second})
	l.checkCall(t, r)
}

// TestBaresipClientCertificate: sipedge asks callers for a certificate
// (verify_clients: require, client_ca the test CA). baresip's
// certificate from the test CA makes the call; one from another CA is
// refused in the handshake (tls_handshakes_verify), and no INVITE
// reaches the Core.
func TestBaresipClientCertificate(t *testing.T) {
	require := func(c *edgeConfig, set tlstest.Set) { c.ClientCA, c.Verify = set.CA.File, "require" }
	t.Run("trusted CA", func(t *testing.T) {
		l := newTLSCallLab(t, require)
		r := runBaresip(t, baresipOptions{Target: l.target(), CAFile: l.set.CA.File, ClientCert: &l.set.Client, Quit: 5 * time.Second})
		l.checkCall(t, r)
	})
	t.Run("other CA", func(t *testing.T) {
		l := newTLSCallLab(t, require)
		foreign := l.set.Other.Client(t, tlstest.ClientName)
		r := runBaresip(t, baresipOptions{Target: l.target(), CAFile: l.set.CA.File, ClientCert: &foreign, Quit: 4 * time.Second, Refused: true})
		if strings.Contains(r.Out, "Call established") {
			t.Errorf("baresip established a call with a certificate from another CA")
		}
		if r.has(func(m traceMsg) bool {
			return strings.HasPrefix(m.Start, "SIP/2.0 200") && strings.HasSuffix(m.CSeq, "INVITE")
		}) {
			t.Errorf("a 200 to the INVITE reached baresip")
		}
		l.core.Stop()
		if n := l.core.Counts()["INVITE_Recv"]; n != 0 {
			t.Errorf("the SIPp Core received %d INVITEs; want none", n)
		}
		st := l.edge.status()
		if st.Stats["tls_handshakes_verify"] < 1 || st.Stats["tls_handshakes_ok"] != 0 {
			t.Errorf("ctl cores: handshakes %v; want verify >= 1 and ok 0", tlsStats(st.Stats))
		}
		t.Logf("sipedge: %v", tlsStats(st.Stats))
	})
}
