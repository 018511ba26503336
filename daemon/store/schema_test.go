package store

import (
	"testing"

	bolt "go.etcd.io/bbolt"
)

// A trial boot (DeferSchema) leaves an older store's schema version for
// the firmware it may roll back to; CommitSchema records the new one.
func TestDeferSchema(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// As written by the previous firmware's layout.
	s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte(bucketMeta)).Put([]byte("schema"), []byte("0")) })
	s.Close()
	if s, err = Open(dir, Options{DeferSchema: true}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Schema(); n != 0 {
		t.Fatalf("a trial boot recorded schema %d", n)
	}
	if err := s.CommitSchema(); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Schema(); n != SchemaVersion {
		t.Fatalf("schema %d after the commit", n)
	}
	s.Close()
	// A store without a version (new) gets this firmware's at once.
	s, err = Open(t.TempDir(), Options{DeferSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, _ := s.Schema(); n != SchemaVersion {
		t.Fatalf("new store: schema %d", n)
	}
}
