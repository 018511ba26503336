package ctl

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	s := NewServer(slog.New(slog.DiscardHandler))
	s.Handle("echo", "echo params", func(_ context.Context, p json.RawMessage) (any, error) {
		var v struct{ Name string }
		if err := DecodeParams(p, &v); err != nil {
			return nil, err
		}
		if v.Name == "" {
			return nil, Errorf(CodeNotFound, "no name")
		}
		return map[string]string{"hello": v.Name}, nil
	})
	s.Handle("boom", "panics", func(context.Context, json.RawMessage) (any, error) { panic("boom") })
	l, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx, l) }()
	defer func() { cancel(); <-done }()

	st, err := os.Stat(sock)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode = %v, %v; want 0600", st.Mode().Perm(), err)
	}
	var out map[string]string
	if err := Call(ctx, sock, "echo", map[string]string{"name": "core1"}, &out); err != nil || out["hello"] != "core1" {
		t.Fatalf("echo = %v, %v", out, err)
	}
	tests := []struct {
		method string
		params any
		code   string
		exit   int
	}{
		{"echo", map[string]string{}, CodeNotFound, 4},
		{"echo", []int{1}, CodeBadRequest, 2},
		{"nosuch", nil, CodeBadRequest, 2},
		{"boom", nil, CodeInternal, 1},
	}
	for _, tt := range tests {
		err := Call(ctx, sock, tt.method, tt.params, nil)
		if CodeOf(err) != tt.code || ExitCode(err) != tt.exit {
			t.Errorf("%s(%v): err %v code %s exit %d; want %s exit %d", tt.method, tt.params, err, CodeOf(err), ExitCode(err), tt.code, tt.exit)
		}
	}
	// A second server on the same live socket is refused.
	if _, err := Listen(sock); err == nil {
		t.Error("second Listen on a live socket succeeded")
	}
}

func TestUnreachableAndStaleSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	err := Call(context.Background(), sock, "help", nil, nil)
	if CodeOf(err) != CodeUnreachable || ExitCode(err) != 3 {
		t.Fatalf("err = %v", err)
	}
	os.WriteFile(sock, nil, 0o600) // a stale file where the socket goes
	l, err := Listen(sock)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	l.Close()
}
