package failover

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// CheckMySQL is a database-aware check: it speaks the MySQL protocol
// (MariaDB too) to Target, runs a query and, optionally, asks whether
// the server is writable and how far its replication lags. A server that
// accepts the TCP connection but never answers (a hung or SIGSTOPped
// mysqld, which passes a tcp check) fails it when the timeout ends.
const CheckMySQL = "mysql"

// DefaultMySQLQuery is run when MySQLOptions.Query is empty.
const DefaultMySQLQuery = "SELECT 1"

// MySQLOptions is the login and the conditions of a mysql check.
type MySQLOptions struct {
	User     string
	Password string // read from the config's password_file
	// Query is run each time (default "SELECT 1"); an error fails the
	// check, rows are not judged (the first is read, the rest dropped).
	Query string
	// Writable: while this box holds the VIP, fail when the server
	// reports @@global.read_only = 1 (a writer VIP). A box that does not
	// hold it is not asked: its database is promoted when it takes the
	// VIP (the notify hook), and a stale demotion must not keep it from
	// taking the VIP back. A reader VIP accepts either.
	Writable bool
	// MaxLag > 0: fail unless the server is a replica whose SQL thread
	// runs and lags at most this much (Seconds_Behind_Master).
	MaxLag time.Duration
}

// mysqlProber keeps one connection to the server between probes (at
// most one, closed after three idle intervals): a check every second
// does not log in every second.
type mysqlProber struct {
	log    *slog.Logger
	target string
	opt    MySQLOptions
	once   sync.Once
	db     *sql.DB
	err    error
}

func newMySQLProber(t TrackOptions, log *slog.Logger) *mysqlProber {
	p := &mysqlProber{target: t.Target, log: log}
	if t.MySQL != nil {
		p.opt = *t.MySQL
	}
	if p.opt.Query == "" {
		p.opt.Query = DefaultMySQLQuery
	}
	return p
}

func (p *mysqlProber) open(timeout, interval time.Duration) (*sql.DB, error) {
	p.once.Do(func() {
		cfg := mysql.NewConfig()
		cfg.Net, cfg.Addr = "tcp", p.target
		cfg.User, cfg.Passwd = p.opt.User, p.opt.Password
		// Every step is bounded, also when the caller's context is not:
		// the dial, the handshake and each read and write.
		cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = timeout, timeout, timeout
		cfg.Logger = driverLog{p.log}
		c, err := mysql.NewConnector(cfg)
		if err != nil {
			p.err = fmt.Errorf("mysql %s: %w", p.target, err)
			return
		}
		p.db = sql.OpenDB(c)
		p.db.SetMaxOpenConns(1)
		p.db.SetMaxIdleConns(1)
		p.db.SetConnMaxIdleTime(3 * interval)
	})
	return p.db, p.err
}

// probe runs one check until ctx ends; holding: this box holds the VIP.
func (p *mysqlProber) probe(ctx context.Context, timeout, interval time.Duration, holding bool) error {
	db, err := p.open(timeout, interval)
	if err != nil {
		return err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("mysql %s: connect: %w", p.target, ctxErr(ctx, err))
	}
	defer conn.Close()
	rows, err := conn.QueryContext(ctx, p.opt.Query)
	if err != nil {
		return fmt.Errorf("mysql %s: query: %w", p.target, ctxErr(ctx, err))
	}
	rows.Next()
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("mysql %s: query: %w", p.target, ctxErr(ctx, err))
	}
	if p.opt.Writable && holding {
		var ro int
		if err := conn.QueryRowContext(ctx, "SELECT @@global.read_only").Scan(&ro); err != nil {
			return fmt.Errorf("mysql %s: read_only: %w", p.target, ctxErr(ctx, err))
		}
		if ro != 0 {
			return fmt.Errorf("mysql %s: read_only=1: this VIP needs a writable database", p.target)
		}
	}
	if p.opt.MaxLag > 0 {
		lag, err := replicaLag(ctx, conn)
		if err != nil {
			return fmt.Errorf("mysql %s: %w", p.target, ctxErr(ctx, err))
		}
		if lag > p.opt.MaxLag {
			return fmt.Errorf("mysql %s: replication lags %v (max_lag %v)", p.target, lag, p.opt.MaxLag)
		}
	}
	return nil
}

// replicaLag reads Seconds_Behind_Master (MariaDB, MySQL before 8.0.22)
// or Seconds_Behind_Source from the replica status. No status (not a
// replica) and NULL (replication stopped) are errors.
func replicaLag(ctx context.Context, conn *sql.Conn) (time.Duration, error) {
	rows, err := conn.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		return 0, fmt.Errorf("replica status: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, fmt.Errorf("replica status: %w", err)
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return 0, fmt.Errorf("replica status: %w", err)
		}
		return 0, errors.New("not a replica (no replica status) but max_lag is set")
	}
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return 0, fmt.Errorf("replica status: %w", err)
	}
	for i, c := range cols {
		if !strings.EqualFold(c, "Seconds_Behind_Master") && !strings.EqualFold(c, "Seconds_Behind_Source") {
			continue
		}
		if vals[i] == nil {
			return 0, errors.New("replication not running (Seconds_Behind_Master is NULL)")
		}
		s, err := strconv.ParseUint(string(vals[i]), 10, 32)
		if err != nil {
			return 0, fmt.Errorf("replica status: lag %q: %w", vals[i], err)
		}
		return time.Duration(s) * time.Second, nil
	}
	return 0, errors.New("replica status has no Seconds_Behind_Master")
}

// ctxErr names the timeout when ctx ended the call (the driver's own
// error then reads "invalid connection" or "i/o timeout").
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("no answer in time (%w): %w", ctx.Err(), err)
	}
	return err
}

// driverLog sends the driver's own messages (already reported as the
// check's error) to the debug log instead of stderr.
type driverLog struct{ log *slog.Logger }

func (d driverLog) Print(v ...any) { d.log.Debug("mysql driver: " + fmt.Sprint(v...)) }

// close releases the prober's connection.
func (p *mysqlProber) close() {
	if p.db != nil {
		_ = p.db.Close()
	}
}
