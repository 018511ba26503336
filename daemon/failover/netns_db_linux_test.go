package failover

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sipedge/sipedge/hal/testenv"
)

// The DB pair of the four-box profile, for real: two namespaces (DB
// boxes A and B), each with its own mariadbd and the sipedge binary,
// and a client namespace (the GUI and the Cores) on one bridge. A holds
// the writer VIP db (server_id 1); the reader VIP dbr follows it on the
// peer (server_id 2). Addresses: 192.0.2.96/27.
const (
	dbA, dbB, dbClient = "192.0.2.97", "192.0.2.98", "192.0.2.99"
	dbWriterVIP        = "192.0.2.110"
	dbReaderVIP        = "192.0.2.111"
)

// newDBLab makes the bridge and the three namespaces (k18 prefix).
func newDBLab(t *testing.T) *lab {
	l := newNamespaces(t, "k18")
	run(t, "ip", "-n", l.br, "link", "add", "br0", "type", "bridge")
	run(t, "ip", "-n", l.br, "link", "set", "br0", "up")
	for i, h := range []struct{ ns, addr string }{{l.a, dbA}, {l.b, dbB}, {l.c, dbClient}} {
		port := fmt.Sprintf("p%d", i)
		run(t, "ip", "-n", l.br, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.ns)
		run(t, "ip", "-n", l.br, "link", "set", port, "master", "br0", "up")
		run(t, "ip", "-n", h.ns, "addr", "add", h.addr+"/27", "dev", "eth0")
		run(t, "ip", "-n", h.ns, "link", "set", "eth0", "up")
	}
	return l
}

// newNamespaces makes a lab's four namespaces (named prefix + br, a, b,
// c + a unique suffix, loopback up, deleted at cleanup) and its cluster
// key; the caller wires them.
func newNamespaces(t *testing.T, prefix string) *lab {
	sfx := fmt.Sprintf("%d%03d", os.Getpid()%100000, time.Now().UnixNano()%1000)
	l := &lab{t: t, dir: t.TempDir(), br: prefix + "br" + sfx, a: prefix + "a" + sfx, b: prefix + "b" + sfx, c: prefix + "c" + sfx}
	for _, ns := range []string{l.br, l.a, l.b, l.c} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	l.key = filepath.Join(l.dir, "cluster.key")
	if err := os.WriteFile(l.key, []byte(prefix+"-netns-test-key-0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	return l
}

// dbConfig is the worked example's DB box (README "Worked example"):
// writer VIP db with a mysql check (writable while holding it: the
// backup's database is promoted by notify at takeover), reader VIP dbr
// following db on the peer with a mysql check that accepts read_only.
func (l *lab) dbConfig(name, self, peer, role string, prio int, sock string) string {
	data := filepath.Join(l.dir, name)
	if err := os.MkdirAll(data, 0o755); err != nil {
		l.t.Fatal(err)
	}
	pw := filepath.Join(data, "probe.pw")
	if err := os.WriteFile(pw, []byte("probe-pw-k18\n"), 0o600); err != nil {
		l.t.Fatal(err)
	}
	notify := filepath.Join(data, "notify.sh")
	script := fmt.Sprintf(`#!/bin/sh
# notify GROUP NEWSTATE OLDSTATE REASON: the writer VIP's holder takes writes.
[ "$1" = db ] || exit 0
if [ "$2" = master ]; then v=0; elif [ "$3" = master ]; then v=1; else exit 0; fi
exec mariadb -S %s -u root --connect-timeout=3 -e "SET GLOBAL read_only=$v"
`, sock)
	if err := os.WriteFile(notify, []byte(script), 0o755); err != nil {
		l.t.Fatal(err)
	}
	cfg := fmt.Sprintf(`node: {name: %[1]s, profile: four-box, platform: generic-x86_64, data_dir: %[2]s}
log: {level: debug}
cluster: {listen: "%[3]s:694", peer: "%[4]s:694", key_file: %[5]s, interval: 100ms}
vips:
  - name: db
    address: %[6]s/27
    interface: eth0
    role: %[7]s
    priority: %[8]d
    deadtime: 1s
    initdead: 2s
    failback: {enabled: true, stable_for: 1s}
    garp: {count: 3, repeat_after: 1s}
    track: [{mysql: {address: "127.0.0.1:3306", user: probe, password_file: %[9]s, timeout: 500ms, writable: true}}]
    notify: %[10]s
  - name: dbr
    address: %[11]s/27
    interface: eth0
    role: %[7]s
    priority: %[8]d
    deadtime: 1s
    initdead: 2s
    failback: {enabled: true, stable_for: 1s}
    garp: {count: 3, repeat_after: 1s}
    follows: {group: db, on: peer}
    track: [{mysql: {address: "127.0.0.1:3306", user: probe, password_file: %[9]s, timeout: 500ms, query: "SELECT @@server_id"}}]
`, name, data, self, peer, l.key, dbWriterVIP, role, prio, pw, notify, dbReaderVIP)
	p := filepath.Join(l.dir, name+".yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		l.t.Fatal(err)
	}
	return p
}

// TestNetnsMySQLReader (issue 18 items 3, 4 and the worked example):
// writer and reader VIPs over two real MariaDB servers, read with
// SELECT @@server_id from a client namespace through each VIP: mysqld
// killed, back, hung (SIGSTOP: it still accepts TCP, which a tcp check
// takes for alive), back again. After each takeover a write through the
// writer VIP succeeds (the backup promoted by the notify hook).
func TestNetnsMySQLReader(t *testing.T) {
	testenv.MustHaveNetns(t)
	testenv.MustHaveExec(t, "mariadbd", "mariadb-install-db", "mariadb")
	testenv.Short(t, "starts two mariadbd and two daemons in namespaces")
	l := newDBLab(t)
	my := map[string]*mariadb{}
	for _, x := range []struct {
		ns string
		id int
		ro bool
	}{{l.a, 1, false}, {l.b, 2, true}} {
		d := newMariaDB(t, x.ns, filepath.Join(l.dir, fmt.Sprintf("my%d", x.id)), x.id, x.ro)
		d.start()
		d.setupUsers()
		my[x.ns] = d
	}
	probeConditions(t, my[l.b])
	a := &box{name: "db-a", ns: l.a, cfg: l.dbConfig("db-a", dbA, dbB, "main", 150, my[l.a].sock())}
	b := &box{name: "db-b", ns: l.b, cfg: l.dbConfig("db-b", dbB, dbA, "backup", 100, my[l.b].sock())}
	l.start(a)
	l.start(b)
	writer := clientDB(t, l.c, dbWriterVIP+":3306")
	reader := clientDB(t, l.c, dbReaderVIP+":3306")

	// writable waits for a write through the writer VIP to succeed: the
	// new holder's notify hook promotes its database just after the
	// takeover (behind a demotion queued while a hung server stalled it).
	writable := func(step string) {
		t.Helper()
		start := time.Now()
		var err error
		for time.Since(start) < 10*time.Second {
			if err = write(writer, step); err == nil {
				t.Logf("%s: writes through the writer VIP %v after it answered", step, time.Since(start).Round(time.Millisecond))
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Errorf("%s: no write through the writer VIP within 10 s: %v", step, err)
	}
	steady := func(step string) {
		t.Helper()
		waitServer(t, writer, step+": writer VIP", "1", 20*time.Second)
		waitServer(t, reader, step+": reader VIP", "2", 20*time.Second)
		writable(step)
		// The backup's notify hook demotes it just after it let go.
		refused := false
		for end := time.Now().Add(10 * time.Second); !refused && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			refused = write(reader, step) != nil
		}
		if !refused {
			t.Errorf("%s: writes through the reader VIP still reach a writable server after 10 s", step)
		}
	}
	// takenOver waits for B to answer on both VIPs and to take writes.
	takenOver := func(step string) time.Duration {
		t.Helper()
		took := waitServer(t, writer, step+": writer VIP", "2", 20*time.Second)
		waitServer(t, reader, step+": reader VIP", "2", 5*time.Second)
		writable(step)
		return took
	}

	steady("boot")

	my[l.a].kill()
	took := takenOver("mysqld A killed")
	t.Logf("mysqld A killed: writer VIP answered by B after %v", took.Round(time.Millisecond))
	if st := l.vip(a); groupState(st, "db") != "fault" || groupState(st, "dbr") != "fault" {
		t.Errorf("A with its mysqld dead: %+v, want both groups in fault", st.Groups)
	}

	my[l.a].start()
	back := time.Now()
	stopWatch := watchReader(reader, "2")
	steady("mysqld A back")
	if other := stopWatch(); other > 0 {
		t.Errorf("the reader VIP was answered by the main %d times during the failback (it should stay on the backup)", other)
	}
	t.Logf("mysqld A back: failback to A within %v", time.Since(back).Round(time.Millisecond))
	if ro, err := my[l.b].sql("SELECT @@global.read_only"); err != nil || ro != "1" {
		t.Errorf("B after failback: read_only %q (%v), want 1 (demoted by notify)", ro, err)
	}

	my[l.a].signal(syscall.SIGSTOP)
	// A hung mysqld still completes TCP handshakes: a tcp check passes.
	if err := testenv.InNetns(l.a, func() error {
		c, err := net.DialTimeout("tcp", "127.0.0.1:3306", time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}); err != nil {
		t.Errorf("stopped mysqld refused TCP (%v): the hung case is not exercised", err)
	}
	took = takenOver("mysqld A hung")
	t.Logf("mysqld A hung (SIGSTOP): writer VIP answered by B after %v", took.Round(time.Millisecond))
	my[l.a].signal(syscall.SIGCONT)
	back = time.Now()
	steady("mysqld A resumed")
	t.Logf("mysqld A resumed: failback to A within %v", time.Since(back).Round(time.Millisecond))

	// B's daemon stopped: A, alone, holds both VIPs.
	l.stop(b, syscall.SIGTERM)
	waitServer(t, reader, "B's daemon stopped: reader VIP", "1", 20*time.Second)
	waitServer(t, writer, "B's daemon stopped: writer VIP", "1", time.Second)
}

// watchReader reads server_id through db every 100 ms (at most 600
// times) until the returned function is called; that returns how many
// answers came from a server other than want.
func watchReader(db *sql.DB, want string) func() int {
	stop, done := make(chan struct{}), make(chan int)
	go func() {
		other := 0
		for i := 0; i < 600; i++ {
			if id, err := serverID(db); err == nil && id != want {
				other++
			}
			select {
			case <-stop:
				done <- other
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
		<-stop
		done <- other
	}()
	return func() int { close(stop); return <-done }
}

// probeConditions runs the mysql check's prober in d's namespace
// against d (read-only, no replica), with each condition.
func probeConditions(t *testing.T, d *mariadb) {
	t.Helper()
	ns := d.ns
	lag := MySQLOptions{User: "probe", Password: "probe-pw-k18", MaxLag: 30 * time.Second}
	for _, tc := range []struct {
		name    string
		opt     MySQLOptions
		holding bool
		want    string // "" : passes
	}{
		{"login and SELECT 1", MySQLOptions{User: "probe", Password: "probe-pw-k18"}, false, ""},
		{"wrong password", MySQLOptions{User: "probe", Password: "nope"}, false, "Access denied"},
		{"bad query", MySQLOptions{User: "probe", Password: "probe-pw-k18", Query: "SELECT nope"}, false, "Unknown column"},
		{"writable, not holding", MySQLOptions{User: "probe", Password: "probe-pw-k18", Writable: true}, false, ""},
		{"writable, holding", MySQLOptions{User: "probe", Password: "probe-pw-k18", Writable: true}, true, "read_only=1"},
		{"max_lag without the privilege", lag, false, "SLAVE MONITOR"},
		{"grant", MySQLOptions{}, false, ""},
		{"max_lag on a server that is no replica", lag, false, "not a replica"},
	} {
		if tc.name == "grant" {
			d.mustSQL("GRANT SLAVE MONITOR ON *.* TO 'probe'@'%'")
			continue
		}
		p := newMySQLProber(TrackOptions{Target: "127.0.0.1:3306", MySQL: &tc.opt}, testLogger(t))
		var err error
		if nerr := testenv.InNetns(ns, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			err = p.probe(ctx, 3*time.Second, time.Second, tc.holding)
			return nil
		}); nerr != nil {
			t.Fatal(nerr)
		}
		p.close()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func groupState(st Status, name string) string {
	for _, g := range st.Groups {
		if g.Name == name {
			return g.State
		}
	}
	return ""
}
