package console

import (
	"errors"
	"io"
	"testing"
	"time"
)

func TestIdleReader(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	ir := newIdleReader(pr)
	ir.reset(100 * time.Millisecond)
	go pw.Write([]byte("ab"))
	b := make([]byte, 1)
	if n, err := ir.Read(b); n != 1 || err != nil || b[0] != 'a' {
		t.Fatalf("read %q %v", b[:n], err)
	}
	if n, err := ir.Read(b); n != 1 || err != nil || b[0] != 'b' {
		t.Fatalf("leftover %q %v", b[:n], err)
	}
	if _, err := ir.Read(b); !errors.Is(err, errIdle) {
		t.Fatalf("after the idle limit: %v", err)
	}
	if _, err := ir.Read(b); !errors.Is(err, errIdle) {
		t.Fatalf("errIdle is not sticky: %v", err)
	}
	// A new session: the read started before the timeout gets the key.
	ir.reset(0)
	go pw.Write([]byte("c"))
	if n, err := ir.Read(b); n != 1 || err != nil || b[0] != 'c' {
		t.Fatalf("after reset: %q %v", b[:n], err)
	}
}
