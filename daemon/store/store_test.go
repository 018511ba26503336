package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

type core struct {
	Address string `json:"address"`
	Drained bool   `json:"drained"`
}

func TestRoundTripAndReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(Runtime, "core/core3", core{"198.51.100.23:5060", true}); err != nil {
		t.Fatal(err)
	}
	s.Put(Runtime, "core/core4", core{"198.51.100.24:5060", false})
	s.Put(Runtime, "web/password", "hash")
	s.Put(State, "vip/sip", "master")
	if _, err := s.Append(Event{Kind: "core.down", Subject: "core1", Message: "3 probes failed"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var c core
	found, err := s.Get(Runtime, "core/core3", &c)
	if err != nil || !found || c.Address != "198.51.100.23:5060" || !c.Drained {
		t.Fatalf("Get after reopen = %v %v %+v", found, err, c)
	}
	if found, _ := s.Get(Runtime, "core/none", &c); found {
		t.Error("absent key found")
	}
	list, err := s.List(Runtime, "core/")
	if err != nil || len(list) != 2 {
		t.Fatalf("List = %v %v", list, err)
	}
	if err := s.Delete(Runtime, "core/core3"); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.List(Runtime, "core/"); len(list) != 1 {
		t.Fatalf("after delete: %v", list)
	}
	ev, err := s.Events(10, 0)
	if err != nil || len(ev) != 1 || ev[0].Kind != "core.down" || ev[0].Seq != 1 || ev[0].Time.IsZero() {
		t.Fatalf("Events = %+v %v", ev, err)
	}
}

func TestEventRingIsBounded(t *testing.T) {
	s, err := Open(t.TempDir(), Options{MaxEvents: 50})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 120; i++ {
		if _, err := s.Append(Event{Kind: "test", Message: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	ev, _ := s.Events(1000, 0)
	if len(ev) != 50 || ev[0].Message != "70" || ev[49].Message != "119" {
		t.Fatalf("got %d events, first %q last %q", len(ev), ev[0].Message, ev[len(ev)-1].Message)
	}
	ev, _ = s.Events(1000, 115)
	if len(ev) != 5 || ev[0].Seq != 116 {
		t.Fatalf("after=115: %+v", ev)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucketIfNotExists([]byte(bucketMeta))
		return b.Put([]byte("schema"), []byte("99"))
	})
	db.Close()
	_, err = Open(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "schema version 99 was written by newer firmware") {
		t.Fatalf("err = %v", err)
	}
}

// TestSecondInstanceLocked opens the store from a second process (a lock
// held in the same process would not be a real test of flock).
func TestSecondInstanceLocked(t *testing.T) {
	if dir := os.Getenv("STORE_TEST_HOLD"); dir != "" {
		s, err := Open(dir, Options{})
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(1)
		}
		fmt.Println("HOLDING")
		time.Sleep(30 * time.Second)
		s.Close()
		os.Exit(0)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSecondInstanceLocked$")
	cmd.Env = append(os.Environ(), "STORE_TEST_HOLD="+dir)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	buf := make([]byte, 64)
	n, _ := out.Read(buf)
	if !strings.Contains(string(buf[:n]), "HOLDING") {
		t.Fatalf("holder said %q", buf[:n])
	}
	start := time.Now()
	_, err := Open(dir, Options{LockTimeout: 300 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second open took %v: it must not hang", d)
	}
	if !strings.Contains(err.Error(), "another sipedge daemon") {
		t.Errorf("message does not say why: %v", err)
	}
}

func TestRecorderFlushesOnStop(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := NewRecorder(s, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	for i := 0; i < 100; i++ {
		r.Event("core.up", "core1", fmt.Sprint(i))
	}
	cancel()
	<-done
	ev, _ := s.Events(1000, 0)
	if len(ev)+int(r.Dropped()) != 100 || len(ev) == 0 {
		t.Fatalf("stored %d, dropped %d, want 100 in all", len(ev), r.Dropped())
	}
}

// TestRecorderFlush: after Flush returns, every event recorded before it
// is in the store, while the recorder keeps running (as `ctl events`
// relies on); with nobody writing, Flush gives up when its context ends.
func TestRecorderFlush(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := NewRecorder(s, slog.New(slog.DiscardHandler))

	r.Event("core.up", "core1", "before the writer runs")
	short, cancelShort := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelShort()
	if err := r.Flush(short); err == nil {
		t.Fatal("Flush returned nil with an event queued and no writer")
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for i := 0; i < 200; i++ {
		r.Event("core.down", "core2", fmt.Sprint(i))
	}
	fctx, cancelF := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelF()
	if err := r.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	ev, err := s.Events(1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := 201 - int(r.Dropped()); len(ev) != want {
		t.Fatalf("after Flush: %d events stored, want %d (dropped %d)", len(ev), want, r.Dropped())
	}
}
