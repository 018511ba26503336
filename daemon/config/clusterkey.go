package config

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Cluster key rules. The key authenticates every heartbeat and every
// replication frame between the two boxes: whoever has it can take the
// VIP or feed the standby.
const (
	// MinClusterKeyBytes: shorter keys are refused outright (as before).
	MinClusterKeyBytes = 16
	// MinPrintableKey: a key of printable characters only reads like a
	// password and needs at least this many.
	MinPrintableKey = 32
	// minDistinctKeyBytes: fewer distinct bytes is a pattern, not a key.
	minDistinctKeyBytes = 10
	// ClusterKeyBytes is how many random bytes GenerateClusterKey draws
	// (written hex-encoded, 64 characters).
	ClusterKeyBytes = 32
)

// ErrClusterKey is wrapped by every refusal of ReadClusterKey.
var ErrClusterKey = errors.New("cluster key")

// ReadClusterKey reads the cluster key file: the key (surrounding
// whitespace trimmed) and what is unsafe about it (weak: a file that
// group or others may read, a short printable key, a repetitive key).
// An error means no usable key at all: unreadable, or under 16 bytes.
// Weak keys are refused for a new box and raise an alarm on a box that
// already ran with them (the caller decides which).
func ReadClusterKey(path string) (key []byte, weak []string, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w (make one: sipedge ctl cluster keygen %s)", ErrClusterKey, err, path)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrClusterKey, err)
	}
	key = bytes.TrimSpace(raw)
	if len(key) < MinClusterKeyBytes {
		return nil, nil, fmt.Errorf("%w %s: %d bytes, at least %d (make one: sipedge ctl cluster keygen)", ErrClusterKey, path, len(key), MinClusterKeyBytes)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		weak = append(weak, fmt.Sprintf("%s is readable by group or others (mode %04o): chmod 600 %s", path, perm, path))
	}
	weak = append(weak, keyStrength(key)...)
	return key, weak, nil
}

// keyStrength says why key is guessable, if it is.
func keyStrength(key []byte) []string {
	var out []string
	printable := true
	var seen [256]bool
	distinct := 0
	for _, c := range key {
		if c < 0x20 || c > 0x7e {
			printable = false
		}
		if !seen[c] {
			seen[c], distinct = true, distinct+1
		}
	}
	if printable && len(key) < MinPrintableKey {
		out = append(out, fmt.Sprintf("the cluster key is %d printable characters (a password?): use at least %d random ones (sipedge ctl cluster keygen)", len(key), MinPrintableKey))
	}
	if distinct < minDistinctKeyBytes {
		out = append(out, fmt.Sprintf("the cluster key has only %d distinct characters: use a random one (sipedge ctl cluster keygen)", distinct))
	}
	return out
}

// CheckClusterKey returns the problems of c's cluster key file as
// `config validate` reports them (nil without a cluster: section).
func (c *Config) CheckClusterKey() Problems {
	if c.Cluster == nil {
		return nil
	}
	_, weak, err := ReadClusterKey(c.Cluster.KeyFile)
	if err != nil {
		weak = []string{err.Error()}
	}
	var ps Problems
	for _, w := range weak {
		ps = append(ps, Problem{File: c.Source, Path: "cluster.key_file", Msg: w})
	}
	return ps
}

// GenerateClusterKey writes a new random cluster key to path, mode
// 0600, creating its directory (0700) if needed. It never overwrites a
// file: both boxes need the same key, so replacing one is a deliberate
// act (remove the old file first).
func GenerateClusterKey(path string) error {
	var b [ClusterKeyBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("%w: random: %w", ErrClusterKey, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("%w: %w", ErrClusterKey, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w: %s exists; both boxes must share one key: remove it first to replace it", ErrClusterKey, path)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrClusterKey, err)
	}
	// O_CREATE honours the umask, which can only remove bits: 0600 or less.
	_, werr := f.WriteString(hex.EncodeToString(b[:]) + "\n")
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		os.Remove(path)
		return fmt.Errorf("%w: write %s: %w", ErrClusterKey, path, err)
	}
	return nil
}
