package app

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sipedge/sipedge/daemon/config"
	"github.com/sipedge/sipedge/daemon/failover"
)

// maxPasswordBytes bounds a mysql check's password file.
const maxPasswordBytes = 1024

// mysqlTrack converts a `track: [{mysql: ...}]` entry, reading its
// password file. interval is the heartbeat interval, the default period
// and timeout of the check.
func mysqlTrack(t config.Track, interval time.Duration) (failover.TrackOptions, error) {
	m := t.MySQL
	pw, err := readPasswordFile(m.PasswordFile)
	if err != nil {
		return failover.TrackOptions{}, fmt.Errorf("track mysql %s: %w", m.Address, err)
	}
	timeout := cmp.Or(m.Timeout.D(), interval)
	return failover.TrackOptions{
		Kind: failover.CheckMySQL, Target: m.Address, Weight: t.Weight, Fall: t.Fall, Rise: t.Rise,
		Interval: max(interval, timeout), Timeout: timeout,
		MySQL: &failover.MySQLOptions{User: m.User, Password: pw, Query: m.Query, Writable: m.Writable, MaxLag: m.MaxLag.D()},
	}, nil
}

// readPasswordFile reads a secret kept beside the config: bounded, and
// refused when group or others may read it. "" means no password.
func readPasswordFile(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("password_file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("password_file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("password_file %s: mode %04o lets group or others read it: chmod 600", path, st.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxPasswordBytes+1))
	if err != nil {
		return "", fmt.Errorf("password_file: %w", err)
	}
	if len(b) > maxPasswordBytes {
		return "", fmt.Errorf("password_file %s: over %d bytes", path, maxPasswordBytes)
	}
	pw := strings.TrimSpace(string(b))
	if pw == "" {
		return "", errors.New("password_file " + path + ": empty (leave password_file out for no password)")
	}
	return pw, nil
}
