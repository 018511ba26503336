package tlspeers

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/internal/sipptest"
	"github.com/sipedge/sipedge/daemon/tlsconf/tlstest"
	"github.com/sipedge/sipedge/hal/testenv"
	"github.com/sipedge/sipedge/internal/kamailiotls"
)

// Kamailio (Debian kamailio 5.6.3 with kamailio-tls-modules) as a tls:
// Core: it listens on TLS for sipedge (and on UDP toward its own
// downstream), answers OPTIONS probes itself with 200, and proxies
// calls statefully (tm, record-routing) to a SIPp UAS on UDP, so that
// the call's ACK and BYE come back through sipedge to Kamailio over TLS
// by loose routing. Each message it takes logs a TLSPEERS- line with
// the transport it came in on ($pr), which the test counts.
//
// The configuration is the bench's (internal/kamailiotls): the tls
// module first, its tls.cfg, and tcp_children=1, the workaround for
// kamailio#3791. The test opens a few connections only, but keeps it so
// that it measures sipedge, not that bug, and says so if Kamailio
// crashes anyway.

// kamailioCfg: udp port, tls port, module path, tls.cfg, then the UAS's
// port.
const kamailioCfg = `#!KAMAILIO
debug=2
log_stderror=yes
children=1
tcp_children=1
auto_aliases=no
enable_tls=yes
listen=udp:127.0.0.1:%d
listen=tls:127.0.0.1:%d
tcp_accept_no_cl=yes
disable_core_dump=yes
mpath="%s"
loadmodule "tls.so"
modparam("tls", "config", "%s")
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "xlog.so"
modparam("tm", "fr_timer", 3000)

request_route {
	if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
	if (is_method("OPTIONS") && !has_totag()) {
		xlog("L_NOTICE", "TLSPEERS-PROBE $rm proto=$pr from=$si\n");
		sl_send_reply("200", "OK");
		exit;
	}
	if (has_totag()) {
		if (loose_route()) {
			xlog("L_NOTICE", "TLSPEERS-DIALOG $rm proto=$pr\n");
			t_relay();
			exit;
		}
		if (is_method("ACK")) { if (t_check_trans()) { t_relay(); } exit; }
		sl_send_reply("404", "Not here");
		exit;
	}
	if (is_method("CANCEL")) { if (t_check_trans()) { t_relay(); } exit; }
	t_check_trans();
	xlog("L_NOTICE", "TLSPEERS-CALL $rm proto=$pr\n");
	record_route();
	$du = "sip:127.0.0.1:%d";
	t_relay();
}
`

// kamailioName is the name in Kamailio's certificate: the tls: Core's
// tls_name.
const kamailioName = "kamailio.test"

// kamailioCore is a Kamailio started by the test.
type kamailioCore struct {
	*peer
	udp, tls int
}

// startKamailio writes the configuration for a certificate pair and
// starts Kamailio in the foreground, relaying calls to the UAS on
// uasPort; it waits until the TLS port listens.
func startKamailio(t *testing.T, pair tlstest.Pair, uasPort int) *kamailioCore {
	t.Helper()
	bin := testenv.MustHaveKamailio(t)
	so := firstExisting("/usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so", "/usr/lib/*/kamailio/modules/tls.so",
		"/usr/lib/kamailio/modules/tls.so", "/usr/local/lib64/kamailio/modules/tls.so")
	if so == "" {
		testenv.Missing(t, "Kamailio's tls module (tls.so) not found: install Debian kamailio-tls-modules")
	}
	dir := t.TempDir()
	k := &kamailioCore{udp: testenv.FreePort(t), tls: testenv.FreePort(t)}
	tlsCfg := writeFile(t, dir, "tls.cfg", kamailiotls.Config(pair.Cert, pair.Key))
	cfg := writeFile(t, dir, "kamailio.cfg", fmt.Sprintf(kamailioCfg, k.udp, k.tls, filepath.Dir(so), tlsCfg, uasPort))
	k.peer = startPeer(t, "kamailio", dir, bin, "-DD", "-E", "-f", cfg, "-x", "tlsf", "-m", "128", "-M", "16", "-Y", dir, "-w", dir)
	deadline := time.Now().Add(20 * time.Second)
	for !listening(k.tls) {
		if k.exited() {
			t.Fatalf("kamailio exited at start: %v", k.err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("kamailio's TLS port %d not listening within 20s", k.tls)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return k
}

// count is how many log lines of Kamailio carry s.
func (k *kamailioCore) count(s string) int { return strings.Count(k.Output(), s) }

// crashed tells whether Kamailio exited, or its log shows a worker
// killed by a signal or the tls module's double free (kamailio#3791).
func (k *kamailioCore) crashed() string {
	if k.exited() {
		return fmt.Sprintf("exited: %v", k.err)
	}
	return kamailiotls.Crashed(k.Output())
}

// TestKamailioTLSCore: sipedge with a tls: Core, Kamailio's TLS
// listener, its tls_name the name in Kamailio's certificate and
// sip.tls.core_ca the test CA. SIPp calls (UDP) through sipedge,
// Kamailio (TLS) and a SIPp UAS (UDP) complete; the Core is active,
// its probes answered, and Kamailio saw the probes, the INVITEs and
// the ACKs and BYEs over TLS. With core_ca another CA, sipedge never
// trusts Kamailio: the Core goes inactive, no call reaches it.
func TestKamailioTLSCore(t *testing.T) {
	testenv.MustHaveSIPp(t)
	testenv.MustHaveKamailio(t)
	set := tlstest.NewSet(t, "edge.test", "127.0.0.1")
	uasPort := testenv.FreePort(t)
	uas := startCore(t, "uas", uasPort)
	kam := startKamailio(t, set.CA.Server(t, kamailioName), uasPort)
	core := coreConfig{Name: "kam", Address: fmt.Sprintf("tls:127.0.0.1:%d", kam.tls), TLSName: kamailioName}
	edgeWith := func(t *testing.T, coreCA string) *edge {
		return startEdge(t, edgeConfig{Cert: set.Server.Cert, Key: set.Server.Key, CoreCA: coreCA, Cores: []coreConfig{core}})
	}
	// caller places calls through sipedge; its output is logged when
	// fewer than want completed.
	caller := func(t *testing.T, e *edge, calls, want int) (ok, failed int) {
		t.Helper()
		p := sipptest.Start(t, sipptest.Options{Name: "caller", Timeout: 60 * time.Second},
			fmt.Sprintf("127.0.0.1:%d", e.cfg.UDP), "-sf", callerScenario, "-s", "service",
			"-m", strconv.Itoa(calls), "-r", "2", "-d", "200", "-recv_timeout", "5000")
		p.Wait(60 * time.Second)
		ok, failed = p.Stat("SuccessfulCall(C)"), p.Stat("FailedCall(C)")
		if ok != want {
			t.Logf("caller output:\n%s", p.Output())
		}
		return ok, failed
	}
	const calls = 3

	t.Run("verified", func(t *testing.T) {
		start := time.Now()
		e := edgeWith(t, set.CA.File)
		c := e.waitCore("kam", "active with a probe answered", 15*time.Second, probed)
		t.Logf("Core active with a probe answered over TLS after %v: %+v", time.Since(start).Round(time.Millisecond), c)
		ok, failed := caller(t, e, calls, calls)
		if ok != calls || failed != 0 {
			t.Errorf("caller: %d calls ok, %d failed; want %d ok", ok, failed, calls)
		}
		c = e.core("kam")
		if c.State != "active" || c.LastCode != 200 || c.Address != core.Address || c.Routed < calls {
			t.Errorf("ctl cores: %+v; want active, last probe 200, address %s, routed >= %d", c, core.Address, calls)
		}
		st := e.status()
		if st.Stats["tls_handshakes_ok"] < 1 {
			t.Errorf("ctl cores: tls_handshakes_ok %d, want >= 1 (%v)", st.Stats["tls_handshakes_ok"], tlsStats(st.Stats))
		}
		if n := kam.count("TLSPEERS-PROBE OPTIONS proto=tls"); n < 1 {
			t.Errorf("Kamailio logged %d probes over TLS; want >= 1", n)
		}
		for _, want := range []string{"TLSPEERS-CALL INVITE proto=tls", "TLSPEERS-DIALOG ACK proto=tls", "TLSPEERS-DIALOG BYE proto=tls"} {
			if n := kam.count(want); n != calls {
				t.Errorf("Kamailio logged %q %d times; want %d", want, n, calls)
			}
		}
		if n := kam.count("proto=udp"); n != 0 {
			t.Errorf("Kamailio took %d messages from sipedge over UDP; want all over TLS", n)
		}
		if why := kam.crashed(); why != "" {
			t.Errorf("Kamailio crashed (tcp_children=1): %s", why)
		}
		t.Logf("sipedge: %v; Kamailio: %d probes over TLS", tlsStats(st.Stats), kam.count("TLSPEERS-PROBE OPTIONS proto=tls"))
		e.Stop(syscall.SIGTERM, 15*time.Second)
	})

	t.Run("wrong CA", func(t *testing.T) {
		invites := kam.count("TLSPEERS-CALL INVITE")
		e := edgeWith(t, set.Other.File)
		c := e.waitCore("kam", "inactive", 15*time.Second, func(c coreStatus) bool { return c.State == "inactive" })
		st := e.status()
		if st.Stats["tls_handshakes_verify"] < 1 || st.Stats["tls_handshakes_ok"] != 0 {
			t.Errorf("ctl cores: handshakes %v; want verify >= 1 and ok 0", tlsStats(st.Stats))
		}
		ok, _ := caller(t, e, 1, 0)
		if ok != 0 {
			t.Errorf("a call completed through a Core whose certificate sipedge cannot verify")
		}
		if n := kam.count("TLSPEERS-CALL INVITE"); n != invites {
			t.Errorf("Kamailio got %d INVITEs from a sipedge that does not trust it", n-invites)
		}
		if why := kam.crashed(); why != "" {
			t.Errorf("Kamailio crashed (tcp_children=1): %s", why)
		}
		t.Logf("Core %+v; sipedge: %v", c, tlsStats(e.status().Stats))
	})

	uas.Stop()
	cnt := uas.Counts()
	if cnt["INVITE_Recv"] != calls || cnt["ACK_Recv"] != calls || cnt["BYE_Recv"] != calls {
		t.Errorf("SIPp UAS behind Kamailio: INVITE %d, ACK %d, BYE %d; want %d each",
			cnt["INVITE_Recv"], cnt["ACK_Recv"], cnt["BYE_Recv"], calls)
	}
}
