// Package store is sipedge's on-box database (bbolt): runtime changes to
// the configuration (Cores added, drained or disabled, the web password,
// bans), runtime state, and a bounded event log.
//
// The file is opened with a lock timeout, so a second daemon on the same
// data directory gets ErrLocked instead of hanging. The schema version is
// recorded; a store written by newer firmware refuses to open.
package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the layout this firmware writes.
const SchemaVersion = 1

// FileName is the database file inside the data directory.
const FileName = "sipedge.db"

// ErrLocked means another process holds the store open.
var ErrLocked = errors.New("store is locked by another process (is another sipedge daemon running on this data_dir?)")

// Bucket names a keyspace of the store.
type Bucket string

const (
	// Runtime holds changes to the configuration made at runtime
	// (cores added, drained, disabled; the web password).
	Runtime Bucket = "runtime"
	// State holds runtime state worth keeping across restarts.
	State Bucket = "state"

	bucketMeta   = "meta"
	bucketEvents = "events"
)

// Options tune Open.
type Options struct {
	LockTimeout time.Duration // default 1s
	MaxEvents   int           // ring size of the event log; default 10000
	Logger      *slog.Logger
	// DeferSchema keeps an older store's schema version as it is (a
	// firmware on its trial boot): the firmware it replaces must still
	// open the store after a rollback. CommitSchema records the new
	// version once the trial has committed.
	DeferSchema bool
}

// Store is the open database.
type Store struct {
	db        *bolt.DB
	path      string
	maxEvents int
	log       *slog.Logger

	mu      sync.Mutex
	lastErr error // last write error (a full disk), for status
	errAt   time.Time
}

// Open opens (creating if needed) the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	if opts.LockTimeout == 0 {
		opts.LockTimeout = time.Second
	}
	if opts.MaxEvents == 0 {
		opts.MaxEvents = 10000
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: data dir: %w", err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("store %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	s := &Store{db: db, path: path, maxEvents: opts.MaxEvents, log: opts.Logger}
	if err := s.init(opts.DeferSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	return s, nil
}

func (s *Store) init(deferSchema bool) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists([]byte(bucketMeta))
		if err != nil {
			return err
		}
		if v := meta.Get([]byte("schema")); v != nil {
			n, err := strconv.Atoi(string(v))
			if err != nil {
				return fmt.Errorf("schema version %q is not a number", v)
			}
			if n > SchemaVersion {
				return fmt.Errorf("schema version %d was written by newer firmware (this one knows up to %d); refusing to open: upgrade the firmware or move the data dir aside", n, SchemaVersion)
			}
		}
		if v := meta.Get([]byte("schema")); v == nil || !deferSchema {
			if err := meta.Put([]byte("schema"), []byte(strconv.Itoa(SchemaVersion))); err != nil {
				return err
			}
		} else if string(v) != strconv.Itoa(SchemaVersion) {
			s.log.Warn("store: schema version kept until the trial commits", "stored", string(v), "firmware", SchemaVersion)
		}
		for _, b := range []string{string(Runtime), string(State), bucketEvents} {
			if _, err := tx.CreateBucketIfNotExists([]byte(b)); err != nil {
				return err
			}
		}
		return nil
	})
}

// CommitSchema records this firmware's schema version (after a trial
// boot opened the store with DeferSchema and committed). A firmware
// whose schema differs from the previous one's must read the previous
// layout until then.
func (s *Store) CommitSchema() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketMeta)).Put([]byte("schema"), []byte(strconv.Itoa(SchemaVersion)))
	})
}

// Schema is the schema version recorded in the store.
func (s *Store) Schema() (int, error) {
	var n int
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = strconv.Atoi(string(tx.Bucket([]byte(bucketMeta)).Get([]byte("schema"))))
		return err
	})
	return n, err
}

// Path is the database file's path.
func (s *Store) Path() string { return s.path }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) noteErr(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.lastErr, s.errAt = err, time.Now()
	} else {
		s.lastErr = nil
	}
	return err
}

// Health reports the last write error (nil once a write succeeds again).
func (s *Store) Health() (err error, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr, s.errAt
}

// Put stores v (as JSON) under key in b.
func (s *Store) Put(b Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store put %s/%s: %w", b, key, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(b)).Put([]byte(key), data)
	})
	if err != nil {
		return s.noteErr(fmt.Errorf("store put %s/%s: %w", b, key, err))
	}
	s.noteErr(nil)
	return nil
}

// Get loads key from b into v; found is false when the key is absent.
func (s *Store) Get(b Bucket, key string, v any) (found bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		data := tx.Bucket([]byte(b)).Get([]byte(key))
		if data == nil {
			return nil
		}
		found = true
		return json.Unmarshal(data, v)
	})
	if err != nil {
		return found, fmt.Errorf("store get %s/%s: %w", b, key, err)
	}
	return found, nil
}

// Delete removes key from b (absent keys are not an error).
func (s *Store) Delete(b Bucket, key string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(b)).Delete([]byte(key))
	})
	if err != nil {
		return s.noteErr(fmt.Errorf("store delete %s/%s: %w", b, key, err))
	}
	return nil
}

// List returns every key in b that starts with prefix, with its JSON.
func (s *Store) List(b Bucket, prefix string) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte(b)).Cursor()
		p := []byte(prefix)
		for k, v := c.Seek(p); k != nil && len(k) >= len(p) && string(k[:len(p)]) == prefix; k, v = c.Next() {
			out[string(k)] = append(json.RawMessage(nil), v...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store list %s/%s: %w", b, prefix, err)
	}
	return out, nil
}

// Reset deletes every key of b (factory reset of runtime changes).
func (s *Store) Reset(b Bucket) error {
	return s.noteErr(s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket([]byte(b)); err != nil {
			return err
		}
		_, err := tx.CreateBucket([]byte(b))
		return err
	}))
}

func seqKey(n uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], n)
	return k[:]
}
