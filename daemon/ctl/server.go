package ctl

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// HandlerFunc serves one method.
type HandlerFunc func(ctx context.Context, params json.RawMessage) (any, error)

// MaxRequestBytes bounds one request.
const MaxRequestBytes = 1 << 20

// Server dispatches requests to registered handlers.
type Server struct {
	log      *slog.Logger
	mu       sync.RWMutex
	handlers map[string]method
}

type method struct {
	help string
	fn   HandlerFunc
}

// NewServer returns a server with the built-in "help" method.
func NewServer(log *slog.Logger) *Server {
	s := &Server{log: log, handlers: map[string]method{}}
	s.Handle("help", "list the methods", func(context.Context, json.RawMessage) (any, error) {
		return s.Methods(), nil
	})
	return s
}

// Handle registers fn for name, replacing any earlier one.
func (s *Server) Handle(name, help string, fn HandlerFunc) {
	s.mu.Lock()
	s.handlers[name] = method{help: help, fn: fn}
	s.mu.Unlock()
}

// Methods lists the registered methods with their help, sorted.
func (s *Server) Methods() map[string]string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]string, len(s.handlers))
	for n, m := range s.handlers {
		out[n] = m.help
	}
	return out
}

// MethodNames lists the method names, sorted.
func (s *Server) MethodNames() []string {
	m := s.Methods()
	ns := make([]string, 0, len(m))
	for n := range m {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

// Call runs one request in process (the web API uses the same handlers).
func (s *Server) Call(ctx context.Context, name string, params json.RawMessage) (any, error) {
	s.mu.RLock()
	m, ok := s.handlers[name]
	s.mu.RUnlock()
	if !ok {
		return nil, Errorf(CodeBadRequest, "unknown method %q (try help)", name)
	}
	return m.fn(ctx, params)
}

// Listen creates the unix socket at path with mode 0600. A stale socket
// left by a crash is removed; a live one (another daemon) is an error.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("ctl socket dir: %w", err)
	}
	if _, err := os.Stat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, 500*time.Millisecond); err == nil {
			c.Close()
			return nil, fmt.Errorf("ctl socket %s: another daemon is answering on it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("ctl socket %s: remove stale socket: %w", path, err)
		}
	}
	old := umask(0o177)
	l, err := net.Listen("unix", path)
	umask(old)
	if err != nil {
		return nil, fmt.Errorf("ctl socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("ctl socket: %w", err)
	}
	return l, nil
}

// Serve answers connections on l until ctx ends; it then closes l and
// removes the socket file.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			s.log.Warn("ctl accept", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveConn(ctx, c)
		}()
	}
}

func (s *Server) serveConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	var req Request
	dec := json.NewDecoder(bufio.NewReader(&limitedReader{c, MaxRequestBytes}))
	resp := Response{}
	if err := dec.Decode(&req); err != nil {
		resp.Error = &Error{Code: CodeBadRequest, Message: "bad request: " + err.Error()}
	} else {
		resp = s.respond(ctx, req)
	}
	json.NewEncoder(c).Encode(resp)
}

func (s *Server) respond(ctx context.Context, req Request) (resp Response) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("ctl handler panic", "method", req.Method, "panic", r)
			resp = Response{Error: &Error{Code: CodeInternal, Message: fmt.Sprintf("internal error in %s", req.Method)}}
		}
	}()
	res, err := s.Call(ctx, req.Method, req.Params)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = &Error{Code: CodeInternal, Message: err.Error()}
		}
		s.log.Debug("ctl call failed", "method", req.Method, "err", e.Message)
		return Response{Error: e}
	}
	data, err := json.Marshal(res)
	if err != nil {
		return Response{Error: &Error{Code: CodeInternal, Message: "encode result: " + err.Error()}}
	}
	return Response{OK: true, Result: data}
}

type limitedReader struct {
	c net.Conn
	n int
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errors.New("request too large")
	}
	if len(p) > l.n {
		p = p[:l.n]
	}
	n, err := l.c.Read(p)
	l.n -= n
	return n, err
}
