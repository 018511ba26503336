package failover

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sipedge/sipedge/hal/testenv"
)

// mariadb is one mysqld started by a test in a network namespace, with
// its own datadir, socket and pid file under the test's directory
// (LAB-NOTES.md, MariaDB).
type mariadb struct {
	t        *testing.T
	ns, dir  string
	serverID int
	readOnly bool
	cmd      *exec.Cmd
	done     chan error
}

func (d *mariadb) sock() string { return d.dir + ".sock" }

// newMariaDB initialises a datadir (mariadb-install-db) for server id in
// namespace ns; start runs it.
func newMariaDB(t *testing.T, ns, dir string, id int, readOnly bool) *mariadb {
	t.Helper()
	testenv.MustHaveExec(t, "mariadbd", "mariadb-install-db", "mariadb")
	out, err := exec.Command("mariadb-install-db", "--user=root", "--datadir="+dir,
		"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb-install-db %s: %v\n%s", dir, err, out)
	}
	return &mariadb{t: t, ns: ns, dir: dir, serverID: id, readOnly: readOnly}
}

func (d *mariadb) start() {
	t := d.t
	t.Helper()
	args := []string{"netns", "exec", d.ns, "mariadbd", "--no-defaults", "--user=root",
		"--datadir=" + d.dir, "--socket=" + d.sock(), "--pid-file=" + d.dir + ".pid",
		"--bind-address=0.0.0.0", "--port=3306", fmt.Sprintf("--server-id=%d", d.serverID),
		"--skip-name-resolve", "--log-error=" + d.dir + ".err", "--skip-log-bin"}
	if d.readOnly {
		args = append(args, "--read-only")
	}
	d.cmd = exec.Command("ip", args...) // ip netns exec execs: the pid is mariadbd's
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.done = make(chan error, 1)
	go func(c *exec.Cmd, done chan error) { done <- c.Wait() }(d.cmd, d.done)
	t.Cleanup(d.kill)
	for deadline := time.Now().Add(60 * time.Second); ; {
		if _, err := d.sql("SELECT 1"); err == nil {
			return
		}
		select {
		case err := <-d.done:
			log, _ := os.ReadFile(d.dir + ".err")
			t.Fatalf("mariadbd %d exited: %v\n%s", d.serverID, err, log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mariadbd %d not ready in 60 s", d.serverID)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill ends mysqld (SIGKILL, after SIGCONT should it be stopped) and
// waits for it.
func (d *mariadb) kill() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGCONT)
	_ = d.cmd.Process.Kill()
	<-d.done
	d.cmd = nil
}

func (d *mariadb) signal(sig syscall.Signal) {
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatalf("signal mysqld %d: %v", d.serverID, err)
	}
}

// sql runs statements as root over the socket (bounded by 10 s).
func (d *mariadb) sql(stmt string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "mariadb", "-S", d.sock(), "-u", "root", "--connect-timeout=3", "-N", "-B", "-e", stmt).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s: %v: %s", stmt, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

func (d *mariadb) mustSQL(stmt string) {
	d.t.Helper()
	if _, err := d.sql(stmt); err != nil {
		d.t.Fatal(err)
	}
}

// setupUsers creates the probe user (login only), the app user (writes
// to k18.t, no privilege to bypass read_only) and the table.
func (d *mariadb) setupUsers() {
	d.mustSQL("CREATE USER 'probe'@'%' IDENTIFIED BY 'probe-pw-k18'; " +
		"CREATE DATABASE k18; CREATE TABLE k18.t (id INT AUTO_INCREMENT PRIMARY KEY, at VARCHAR(64)); " +
		"CREATE USER 'app'@'%' IDENTIFIED BY 'app-pw-k18'; GRANT SELECT, INSERT ON k18.* TO 'app'@'%'")
}

var registerDial sync.Map // netns -> registered

// clientDB opens the app user's database at addr from namespace ns: a
// new connection per query (no pool), so a query after a VIP moved
// reaches the new holder.
func clientDB(t *testing.T, ns, addr string) *sql.DB {
	t.Helper()
	net_ := "netns-" + ns
	if _, done := registerDial.LoadOrStore(ns, true); !done {
		mysql.RegisterDialContext(net_, func(ctx context.Context, addr string) (net.Conn, error) {
			var c net.Conn
			err := testenv.InNetns(ns, func() error {
				var err error
				c, err = (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, "tcp", addr)
				return err
			})
			return c, err
		})
	}
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.User, cfg.Passwd, cfg.DBName = net_, addr, "app", "app-pw-k18", "k18"
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 2*time.Second, 2*time.Second, 2*time.Second
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	db.SetMaxIdleConns(0)
	t.Cleanup(func() { db.Close() })
	return db
}

// serverID asks who answers at db ("" and the error if nobody does).
func serverID(db *sql.DB) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var id string
	err := db.QueryRowContext(ctx, "SELECT @@server_id").Scan(&id)
	return id, err
}

func write(db *sql.DB, what string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := db.ExecContext(ctx, "INSERT INTO t (at) VALUES (?)", what)
	return err
}

// waitServer polls db until server id answers, for at most max; it
// returns how long that took.
func waitServer(t *testing.T, db *sql.DB, what, id string, max time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var got string
	var err error
	for time.Since(start) < max {
		if got, err = serverID(db); err == nil && got == id {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: server_id %q (err %v) after %v, want %s", what, got, err, max, id)
	return 0
}
