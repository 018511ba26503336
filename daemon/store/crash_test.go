package store

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sipedge/sipedge/hal/testenv"
)

// crashWriter is the child process of TestKill9WhileWriting: it writes
// runtime changes as fast as it can and prints "ack N" after each Put
// returns (bbolt has fsynced it by then).
func crashWriter(dir string, start int) {
	s, err := Open(dir, Options{LockTimeout: 5 * time.Second})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	w := bufio.NewWriter(os.Stdout)
	for i := start; ; i++ {
		if err := s.Put(Runtime, fmt.Sprintf("core/c%06d", i), map[string]any{"address": "198.51.100.1:5060", "n": i}); err != nil {
			fmt.Println("ERR", err)
			os.Exit(1)
		}
		if i%3 == 0 {
			s.Append(Event{Kind: "test", Message: strconv.Itoa(i)})
		}
		fmt.Fprintf(w, "ack %d\n", i)
		w.Flush()
	}
}

// TestKill9WhileWriting kills a writing process 100 times at random
// moments: the store must open every time and hold every change whose
// write was acknowledged.
func TestKill9WhileWriting(t *testing.T) {
	if dir := os.Getenv("STORE_CRASH_DIR"); dir != "" {
		n, _ := strconv.Atoi(os.Getenv("STORE_CRASH_START"))
		crashWriter(dir, n)
		return
	}
	testenv.Short(t, "kills a writer 100 times")
	dir := t.TempDir()
	const rounds = 100
	acked := -1
	deadline := time.Now().Add(2 * time.Minute)
	for round := 0; round < rounds; round++ {
		if time.Now().After(deadline) {
			t.Fatalf("only %d rounds in 2 minutes", round)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestKill9WhileWriting$")
		cmd.Env = append(os.Environ(), "STORE_CRASH_DIR="+dir, fmt.Sprintf("STORE_CRASH_START=%d", acked+1))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Read acks until a random number of writes, then kill -9 mid-stream.
		sc := bufio.NewScanner(out)
		want := 1 + rand.IntN(40)
		got := 0
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "ERR") {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("round %d: writer: %s", round, line)
			}
			if n, err := strconv.Atoi(strings.TrimPrefix(line, "ack ")); err == nil {
				acked = n
				got++
			}
			if got == want {
				cmd.Process.Signal(syscall.SIGKILL)
				break
			}
		}
		// Acks already in the pipe when it died are acknowledged too.
		for sc.Scan() {
			if n, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "ack ")); err == nil {
				acked = n
			}
		}
		cmd.Wait()

		s, err := Open(dir, Options{LockTimeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("round %d: store does not open after kill -9: %v", round, err)
		}
		keys, err := s.List(Runtime, "core/")
		s.Close()
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for i := 0; i <= acked; i++ {
			if _, ok := keys[fmt.Sprintf("core/c%06d", i)]; !ok {
				t.Fatalf("round %d: acknowledged change %d lost (acked up to %d, store has %d)", round, i, acked, len(keys))
			}
		}
	}
	t.Logf("%d kill -9 rounds, %d acknowledged changes, none lost", rounds, acked+1)
}

// TestDiskFull fills a small tmpfs under the store: writes fail with a
// clear error and Health reports it, reads keep working, and writes work
// again once space returns.
func TestDiskFull(t *testing.T) {
	testenv.MustHaveRoot(t)
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "sipedge-test", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put(Runtime, "core/before", "kept"); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, "filler")
	exec.Command("dd", "if=/dev/zero", "of="+filler, "bs=64k").Run() // until ENOSPC
	big := strings.Repeat("x", 256<<10)
	var werr error
	for i := 0; i < 64 && werr == nil; i++ {
		werr = s.Put(State, fmt.Sprintf("big/%d", i), big)
	}
	if werr == nil {
		t.Fatal("writes kept succeeding on a full disk")
	}
	if !strings.Contains(werr.Error(), "no space left") {
		t.Errorf("write error does not say the disk is full: %v", werr)
	}
	if herr, _ := s.Health(); herr == nil {
		t.Error("Health does not report the write fault")
	}
	var v string
	if found, err := s.Get(Runtime, "core/before", &v); !found || err != nil || v != "kept" {
		t.Fatalf("read on a full disk: %v %v %q", found, err, v)
	}
	os.Remove(filler)
	if err := s.Put(Runtime, "core/after", "written"); err != nil {
		t.Fatalf("write after space returned: %v", err)
	}
	if herr, _ := s.Health(); herr != nil {
		t.Errorf("Health still reports %v after recovery", herr)
	}
}
