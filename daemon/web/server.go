package web

import (
	"context"
	"crypto/tls"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

//go:embed assets
var assets embed.FS

// Caller runs the daemon's control methods in process (the ctl server).
type Caller interface {
	Call(ctx context.Context, method string, params json.RawMessage) (any, error)
	Methods() map[string]string
}

// Options build a Server.
type Options struct {
	// Listen is the TCP address to serve on (host:port).
	Listen string
	// OpenTo are the networks allowed to reach the server at all; an
	// empty list allows loopback only.
	OpenTo []netip.Prefix
	// AdminFrom are the administration networks: they may log in and
	// act, and the global login lock never holds them. Loopback always
	// is one.
	AdminFrom []netip.Prefix
	// ActFromOpenTo lets every open_to network log in and act (a file
	// written before web.admin_from existed); the global lock still
	// holds all but AdminFrom.
	ActFromOpenTo bool
	// Names are the host names and addresses the box is reached by,
	// besides loopback, the listen address and the address a request
	// came in on: any other Host header gets 421 (DNS rebinding).
	Names []string
	// Certificate, if set, makes the server speak HTTPS (TLS 1.2+)
	// only; SetCertificate replaces it.
	Certificate *tls.Certificate
	// HSTS sends Strict-Transport-Security over TLS (only with the
	// operator's certificate: a browser would lock itself out of a
	// self-signed one).
	HSTS bool
	// Warnings are unsafe settings the box runs with (alarms): shown on
	// the page and in sipedge_web_unsafe_config.
	Warnings []Warning
	// Ctl runs every read and action.
	Ctl Caller
	// UploadDir keeps an uploaded update bundle while it is applied
	// (the data partition: /tmp is a small tmpfs). Empty: os.TempDir().
	UploadDir string
	// Password returns the stored web password hash; found is false
	// while none is set (then nobody can log in).
	Password func() (h Hash, found bool, err error)
	// Gatherer is served on /metrics (nil: /metrics answers 404).
	Gatherer prometheus.Gatherer
	// Registerer, if set, gets the web server's own metrics.
	Registerer prometheus.Registerer
	// Event, if set, records audit events (logins, lockouts, actions).
	Event   func(kind, subject, message string)
	Lockout Lockout
	Logger  *slog.Logger
	Now     func() time.Time
}

// Server is the web status page, JSON API and /metrics.
type Server struct {
	opts     Options
	log      *slog.Logger
	openTo   atomic.Pointer[[]netip.Prefix]
	access   atomic.Pointer[adminAccess]
	names    atomic.Pointer[[]string]
	cert     atomic.Pointer[tls.Certificate]
	warnings atomic.Pointer[[]Warning]
	unsafe   *prometheus.GaugeVec
	sessions *sessions
	limiter  *limiter
	mux      *http.ServeMux
	logins   *prometheus.CounterVec
	actions  *prometheus.CounterVec
	// verify checks a password (Hash.Verify; tests count the calls).
	verify func(Hash, string) bool
}

// New returns a server; Serve or Handler put it to work.
func New(o Options) (*Server, error) {
	if o.Ctl == nil {
		return nil, errors.New("web: no ctl caller")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Password == nil {
		o.Password = func() (Hash, bool, error) { return Hash{}, false, nil }
	}
	if o.Event == nil {
		o.Event = func(string, string, string) {}
	}
	s := &Server{opts: o, log: o.Logger, sessions: newSessions(o.Now), limiter: newLimiter(o.Lockout, o.Now)}
	s.SetOpenTo(o.OpenTo)
	s.SetAdminFrom(o.AdminFrom, o.ActFromOpenTo)
	s.SetNames(o.Names)
	s.cert.Store(o.Certificate)
	s.verify = Hash.Verify
	s.logins = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sipedge_web_logins_total", Help: "Web login attempts by result (ok, bad_password, locked_out, global_locked_out, busy, not_admin, no_password).",
	}, []string{"result"})
	s.actions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sipedge_web_actions_total", Help: "Actions taken from the web page by method and result.",
	}, []string{"method", "result"})
	s.unsafe = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sipedge_web_unsafe_config", Help: "1 for each unsafe setting the box runs with (kept for compatibility; `sipedge ctl config validate` fails on it), by setting.",
	}, []string{"setting"})
	s.SetWarnings(o.Warnings)
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{s.logins, s.actions, s.unsafe} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("web: register metrics: %w", err)
			}
		}
	}
	s.routes()
	return s, nil
}

// SetOpenTo replaces the allowed networks (a configuration reload).
func (s *Server) SetOpenTo(p []netip.Prefix) {
	cp := append([]netip.Prefix(nil), p...)
	s.openTo.Store(&cp)
}

// adminAccess is who may log in and act.
type adminAccess struct {
	nets      []netip.Prefix
	allOpenTo bool
}

// SetAdminFrom replaces the administration networks (a configuration
// reload); allOpenTo lets every open_to network act (see
// Options.ActFromOpenTo).
func (s *Server) SetAdminFrom(p []netip.Prefix, allOpenTo bool) {
	s.access.Store(&adminAccess{nets: append([]netip.Prefix(nil), p...), allOpenTo: allOpenTo})
}

// isAdmin tells whether a is in the administration networks (loopback
// always is): never held by the global login lock.
func (s *Server) isAdmin(a netip.Addr) bool {
	return a.IsLoopback() || inAny(s.access.Load().nets, a)
}

// mayAct tells whether a may log in and act.
func (s *Server) mayAct(a netip.Addr) bool {
	return s.isAdmin(a) || s.access.Load().allOpenTo
}

func (s *Server) mayActReq(r *http.Request) bool {
	a, ok := clientAddr(r)
	return ok && s.mayAct(a)
}

func inAny(nets []netip.Prefix, a netip.Addr) bool {
	for _, p := range nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// LogoutAll ends every session (the password was changed).
func (s *Server) LogoutAll() { s.sessions.clear() }

// Handler is the whole site.
func (s *Server) Handler() http.Handler { return s }

// ServeHTTP checks the client's address, sets the security headers and
// dispatches.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
	if r.TLS != nil && s.opts.HSTS {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	if !s.allowed(r) {
		s.log.Debug("web: refused client outside open_to", "remote", r.RemoteAddr, "path", r.URL.Path)
		http.Error(w, "403 forbidden: this address is not in web.open_to", http.StatusForbidden)
		return
	}
	if !s.knownHost(r) {
		s.log.Debug("web: refused unknown Host", "remote", r.RemoteAddr, "host", r.Host)
		http.Error(w, "421 misdirected request: the Host header names none of this box's names or addresses (web.names)", http.StatusMisdirectedRequest)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func clientAddr(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		a, err := netip.ParseAddr(r.RemoteAddr)
		return a.Unmap(), err == nil
	}
	return ap.Addr().Unmap(), true
}

func (s *Server) allowed(r *http.Request) bool {
	a, ok := clientAddr(r)
	if !ok {
		return false
	}
	nets := *s.openTo.Load()
	if len(nets) == 0 {
		return a.IsLoopback()
	}
	return inAny(nets, a) || inAny(s.access.Load().nets, a)
}

func (s *Server) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	files := http.FileServerFS(static)
	m.Handle("GET /static/", http.StripPrefix("/static/", files))
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		http.ServeFileFS(w, r, static, "index.html")
	})
	m.HandleFunc("GET /api/", s.apiIndex)
	m.HandleFunc("GET /api/overview", s.overview)
	m.HandleFunc("GET /api/status", s.read("status", nil))
	m.HandleFunc("GET /api/cores", func(w http.ResponseWriter, r *http.Request) {
		res, err := s.call(r.Context(), s.coreMethod(), nil)
		s.reply(w, res, err)
	})
	m.HandleFunc("GET /api/vips", s.read(MethodVIPs, nil))
	m.HandleFunc("GET /api/bans", s.read(MethodBans, nil))
	m.HandleFunc("GET /api/replica", s.read(MethodReplica, nil))
	m.HandleFunc("GET /api/pair", s.read(MethodPair, nil))
	m.HandleFunc("GET /api/history", s.read(MethodHistory, nil))
	m.HandleFunc("GET /api/events", s.events)
	m.HandleFunc("GET /api/session", s.session)
	m.HandleFunc("POST /api/login", s.login)
	m.HandleFunc("POST /api/logout", s.logout)
	m.HandleFunc("POST /api/action/{method}", s.action)
	m.HandleFunc("POST /api/update", s.uploadUpdate) // update.go
	m.HandleFunc("GET /api/update/status", s.read(MethodUpdate, nil))
	if s.opts.Gatherer != nil {
		m.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	}
	s.mux = m
}

// Listen opens the server's TCP listener (so a busy port fails the
// daemon's start, not later).
func (s *Server) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("web listen %s: %w", s.opts.Listen, err)
	}
	return ln, nil
}

// Serve answers on ln until ctx ends, then shuts down within 5 s.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	if s.cert.Load() != nil {
		hs.TLSConfig = s.tlsConfig()
		go func() { errc <- hs.ServeTLS(ln, "", "") }()
	} else {
		go func() { errc <- hs.Serve(ln) }()
	}
	select {
	case err := <-errc:
		return fmt.Errorf("web: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
	}
	<-errc
	return nil
}
