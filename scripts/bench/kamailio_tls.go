package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/sipedge/sipedge/internal/kamailiotls"
	"github.com/sipedge/sipedge/scripts/bench/streamload"
)

// Kamailio over TCP and TLS, for the stream rows (issue 19): the same
// routing as kamailioCfg (record-routing, dispatcher round robin to the
// UDP Cores), with listeners on tcp and tls beside the udp one, the tls
// module with a generated certificate, and connection caps raised for
// the 10,000 idle connections.
//
// stream.go wires them into the bench (the stream rows, each against a
// fresh process): startKamailioStream with tcpChildren 1 (see
// kamailioStreamCfg); sipedge gets the same listeners from sipedgeYAML
// with its sip.tcp caps raised to streamMaxConns.

// kamailioStreamGlobals go after kamailioCfg's listen= line: tcp port,
// tls port, then the connection caps and fd limit.
const kamailioStreamGlobals = `listen=tcp:127.0.0.1:%d
listen=tls:127.0.0.1:%d
enable_tls=yes
tcp_children=%d
tcp_max_connections=%d
tls_max_connections=%d
open_files_limit=%d
tcp_connection_lifetime=3605
tcp_accept_no_cl=yes
disable_core_dump=yes
`

// kamailioStreamModules go after kamailioCfg's mpath= line (tls.so
// first: it must be loaded before the modules that may use TLS).
const kamailioStreamModules = `loadmodule "tls.so"
modparam("tls", "config", "%s")
`

// streamMaxConns caps Kamailio's TCP and TLS connections (its default,
// 2048, is below the 10,000 idle connections of the memory row).
const streamMaxConns = 12000

// openFilesLimit is Kamailio's open_files_limit: room for the capped
// connections and its own files, but no more than this process's hard
// RLIMIT_NOFILE (Kamailio may not raise it without CAP_SYS_RESOURCE,
// and exits when it cannot).
func openFilesLimit() int {
	want := uint64(streamMaxConns + 1024)
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil && rl.Max < want {
		return int(rl.Max)
	}
	return int(want)
}

// kamailioStreamCfg is kamailioCfg (udp on port, Cores from list) with
// tcp on tcpPort and tls on tlsPort, the tls module reading tlsCfg, and
// tcpChildren TCP/TLS workers.
//
// The stream rows run it with tcpChildren 1: with more, Debian's
// Kamailio crashes once many TLS connections are open (see
// internal/kamailiotls).
func kamailioStreamCfg(port, tcpPort, tlsPort, tcpChildren int, list, tlsCfg string) (string, error) {
	base := fmt.Sprintf(kamailioCfg, port, list)
	listen := fmt.Sprintf("listen=udp:127.0.0.1:%d\n", port)
	mpath := "mpath=\"/usr/lib/x86_64-linux-gnu/kamailio/modules/\"\n"
	if !strings.Contains(base, listen) || !strings.Contains(base, mpath) {
		return "", fmt.Errorf("kamailioCfg has no %q or %q line to extend", strings.TrimSpace(listen), strings.TrimSpace(mpath))
	}
	base = strings.Replace(base, listen, listen+fmt.Sprintf(kamailioStreamGlobals, tcpPort, tlsPort, tcpChildren, streamMaxConns, streamMaxConns, openFilesLimit()), 1)
	base = strings.Replace(base, mpath, mpath+fmt.Sprintf(kamailioStreamModules, tlsCfg), 1)
	return base, nil
}

// writeKamailioStream writes the dispatcher list, a certificate (ECDSA
// P-256, for 127.0.0.1 and "kamailio.bench"), tls.cfg and kamailio.cfg
// into dir; it returns the config's path and the PKI (the caller's CA
// file and server name).
func writeKamailioStream(dir string, port, tcpPort, tlsPort, tcpChildren int, cores []int) (string, streamload.PKI, error) {
	list := filepath.Join(dir, "dispatcher.list")
	var b strings.Builder
	for _, c := range cores {
		fmt.Fprintf(&b, "1 sip:127.0.0.1:%d\n", c)
	}
	if err := os.WriteFile(list, []byte(b.String()), 0o644); err != nil {
		return "", streamload.PKI{}, err
	}
	pki, err := streamload.WritePKI(dir, "kamailio.bench", []net.IP{net.IPv4(127, 0, 0, 1)}, 0)
	if err != nil {
		return "", pki, err
	}
	tlsCfg := filepath.Join(dir, "tls.cfg")
	if err := os.WriteFile(tlsCfg, []byte(kamailiotls.Config(pki.CertFile, pki.KeyFile)), 0o644); err != nil {
		return "", pki, err
	}
	text, err := kamailioStreamCfg(port, tcpPort, tlsPort, tcpChildren, list, tlsCfg)
	if err != nil {
		return "", pki, err
	}
	cfg := filepath.Join(dir, "kamailio.cfg")
	return cfg, pki, os.WriteFile(cfg, []byte(text), 0o644)
}

// startKamailioStream starts Kamailio as startKamailio does (tlsf, 1 GiB
// of shared memory), listening on udp port, tcp tcpPort and tls tlsPort,
// with tcpChildren TCP/TLS workers (see kamailioStreamCfg: 1 for TLS).
func startKamailioStream(dir string, port, tcpPort, tlsPort, tcpChildren int, cores []int) (*target, streamload.PKI, error) {
	cfg, pki, err := writeKamailioStream(dir, port, tcpPort, tlsPort, tcpChildren, cores)
	if err != nil {
		return nil, pki, err
	}
	t := &target{name: "kamailio", port: port, done: make(chan struct{}), log: filepath.Join(dir, "kamailio.log")}
	t.cmd = exec.Command("kamailio", "-DD", "-E", "-f", cfg, "-x", "tlsf", "-m", "1024", "-M", "16", "-Y", dir, "-w", dir)
	t.sidePorts = func() []int { return nil }
	t.downs = func() (int, int) {
		b, _ := os.ReadFile(t.log)
		return strings.Count(string(b), "BENCH-CORE-DOWN"), strings.Count(string(b), "BENCH-NO-CORE")
	}
	return t, pki, t.start(dir)
}

// kamailioCrashed tells whether Kamailio's log shows a worker killed by
// a signal or the TLS double free of OpenSSL 3 (kamailio#3791).
func kamailioCrashed(log string) string {
	b, _ := os.ReadFile(log)
	return kamailiotls.Crashed(string(b))
}
