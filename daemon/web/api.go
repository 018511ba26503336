package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sipedge/sipedge/daemon/ctl"
	"github.com/sipedge/sipedge/daemon/history"
	"github.com/sipedge/sipedge/daemon/pair"
)

// Control methods the page reads. Methods registered by the balancer and
// failover subsystems may be absent (a DB box has no balancer): the page
// then shows "not available on this box".
const (
	MethodStatus = "status"
	MethodEvents = "events"
	MethodVIPs   = "vip"
	MethodBans   = "bans" // the edge's ban table (absent on a DB box)
	// MethodReplica is the hot-standby channel (only on an edge box with
	// cluster.replication): the page shows its section only then.
	MethodReplica = "replica"
	// MethodPair: both boxes of the pair (the page's pair section).
	MethodPair = pair.MethodPair
	// MethodHistory: the last hour the charts draw.
	MethodHistory = history.MethodHistory
)

// CoreMethods are the names the Core pool listing may have; the first
// one the box has is used.
var CoreMethods = []string{"cores", "cores.list"}

// Actions are the control methods the web page may call after login.
var Actions = []string{
	"cores.add", "cores.remove", "cores.drain", "cores.enable", "cores.disable",
	"vip.release", "vip.takeover", "vip.auto", "reboot", "bans.clear",
}

const (
	cookieSession = "sipedge_session"
	cookieCSRF    = "sipedge_csrf"
	headerCSRF    = "X-CSRF-Token"
	maxBody       = 64 << 10
	callTimeout   = 15 * time.Second
)

// apiError is the JSON shape of every failure.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	enc.Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	var e apiError
	e.Error.Code, e.Error.Message = code, msg
	writeJSON(w, status, e)
}

// httpStatus maps a ctl error code to an HTTP status.
func httpStatus(code string) int {
	switch code {
	case ctl.CodeBadRequest:
		return http.StatusBadRequest
	case ctl.CodeNotFound:
		return http.StatusNotFound
	case ctl.CodeConflict:
		return http.StatusConflict
	case CodeNotAvailable:
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}

// CodeNotAvailable is the error code of a method this box does not have.
const CodeNotAvailable = "not_available"

func (s *Server) has(method string) bool {
	_, ok := s.opts.Ctl.Methods()[method]
	return ok
}

// call runs a control method; a method the box lacks is CodeNotAvailable.
// coreMethod is the Core listing method of this box ("" if none).
func (s *Server) coreMethod() string {
	for _, m := range CoreMethods {
		if s.has(m) {
			return m
		}
	}
	return CoreMethods[0]
}

func (s *Server) call(ctx context.Context, method string, params json.RawMessage) (any, error) {
	if !s.has(method) {
		return nil, ctl.Errorf(CodeNotAvailable, "%s: not available on this box", method)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	return s.opts.Ctl.Call(ctx, method, params)
}

func (s *Server) reply(w http.ResponseWriter, res any, err error) {
	if err != nil {
		code := ctl.CodeOf(err)
		writeErr(w, httpStatus(code), code, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) read(method string, params json.RawMessage) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		res, err := s.call(r.Context(), method, params)
		s.reply(w, res, err)
	}
}

func (s *Server) apiIndex(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/" {
		writeErr(w, http.StatusNotFound, ctl.CodeNotFound, "no such API path: "+r.URL.Path)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"views": map[string]string{
			"/api/overview": "everything the status page shows, in one answer (the page polls it)",
			"/api/status":   "node, version, uptime, profile, subsystems and their sections",
			"/api/cores":    "the Core pool (" + s.coreMethod() + ")",
			"/api/vips":     "the VIP groups (" + MethodVIPs + ")",
			"/api/events":   "recent events: ?limit=N&after=SEQ",
			"/api/bans":     "sources banned at the edge (" + MethodBans + ")",
			"/api/replica":  "hot standby: role, connected, peer, lag, dialogs mirrored (" + MethodReplica + ")",
			"/api/pair":     "both boxes of the pair side by side (" + MethodPair + ")",
			"/api/history":  "the last hour for the charts: 1 s for 10 minutes, 10 s before (" + MethodHistory + ")",
			"/api/session":  "whether this browser is logged in, and its CSRF token",
			"/metrics":      "Prometheus text format",
		},
		"actions": s.availableActions(),
	})
}

func (s *Server) availableActions() []string {
	out := []string{}
	for _, a := range Actions {
		if s.has(a) {
			out = append(out, a)
		}
	}
	return out
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := map[string]int{"limit": 50}
	for _, k := range []string{"limit", "after"} {
		if v := q.Get(k); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				writeErr(w, http.StatusBadRequest, ctl.CodeBadRequest, k+" must be a non-negative number")
				return
			}
			p[k] = n
		}
	}
	raw, _ := json.Marshal(p)
	res, err := s.call(r.Context(), MethodEvents, raw)
	s.reply(w, res, err)
}

// part is one section of the overview: its result or why it is missing.
type part struct {
	Available bool   `json:"available"`
	Result    any    `json:"result,omitempty"`
	Error     string `json:"error,omitempty"`
}

func (s *Server) part(ctx context.Context, method string, params json.RawMessage) part {
	res, err := s.call(ctx, method, params)
	if err != nil {
		return part{Available: ctl.CodeOf(err) != CodeNotAvailable, Error: err.Error()}
	}
	return part{Available: true, Result: res}
}

func (s *Server) overview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	_, logged := s.currentSession(r)
	writeJSON(w, http.StatusOK, map[string]any{
		"time":     s.opts.Now().UTC(),
		"status":   s.part(ctx, MethodStatus, nil),
		"cores":    s.part(ctx, s.coreMethod(), nil),
		"vips":     s.part(ctx, MethodVIPs, nil),
		"bans":     s.part(ctx, MethodBans, nil),
		"replica":  s.part(ctx, MethodReplica, nil),
		"pair":     s.part(ctx, MethodPair, nil),
		"events":   s.part(ctx, MethodEvents, json.RawMessage(`{"limit":20}`)),
		"session":  map[string]any{"logged_in": logged, "may_act": s.mayActReq(r)},
		"warnings": s.Warnings(),
		"actions":  s.availableActions(),
	})
}

func (s *Server) currentSession(r *http.Request) (*session, bool) {
	c, err := r.Cookie(cookieSession)
	if err != nil {
		return nil, false
	}
	return s.sessions.get(c.Value)
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}

// session tells the page whether it is logged in and hands it the CSRF
// token for its next POST: the session's, or before login a token bound
// to a cookie (double submit), so that the login POST is covered too.
func (s *Server) session(w http.ResponseWriter, r *http.Request) {
	_, found, _ := s.opts.Password()
	if sess, ok := s.currentSession(r); ok {
		writeJSON(w, http.StatusOK, map[string]any{"logged_in": true, "csrf": sess.csrf, "password_set": found, "may_act": s.mayActReq(r)})
		return
	}
	tok := ""
	if c, err := r.Cookie(cookieCSRF); err == nil && len(c.Value) == 64 {
		tok = c.Value
	} else {
		tok = token()
		setCookie(w, r, cookieCSRF, tok, 0)
	}
	writeJSON(w, http.StatusOK, map[string]any{"logged_in": false, "csrf": tok, "password_set": found, "may_act": s.mayActReq(r)})
}

// sameOrigin refuses a POST whose Origin (when the browser sends one)
// is not this site.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	addr, _ := clientAddr(r)
	who := addr.String()
	if !sameOrigin(r) {
		writeErr(w, http.StatusForbidden, "csrf", "cross-origin request refused")
		return
	}
	if !s.mayAct(addr) {
		s.logins.WithLabelValues("not_admin").Inc()
		writeErr(w, http.StatusForbidden, "not_admin", who+" may read this page but not log in: it is not in web.admin_from")
		return
	}
	c, err := r.Cookie(cookieCSRF)
	if err != nil || !equalToken(r.Header.Get(headerCSRF), c.Value) {
		writeErr(w, http.StatusForbidden, "csrf", "missing or wrong CSRF token: reload the page")
		return
	}
	var body struct {
		Password string `json:"password"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&body); err != nil {
		writeErr(w, http.StatusBadRequest, ctl.CodeBadRequest, "bad login request: "+err.Error())
		return
	}
	h, found, err := s.opts.Password()
	if err != nil {
		writeErr(w, http.StatusInternalServerError, ctl.CodeInternal, "password store: "+err.Error())
		return
	}
	if !found {
		s.logins.WithLabelValues("no_password").Inc()
		writeErr(w, http.StatusConflict, ctl.CodeConflict, "no web password is set: set one from the serial console or with `sipedge ctl web password`")
		return
	}
	// The attempt is counted before the (costly) check, and only one
	// check per source runs at a time: parallel guesses get 429 at once.
	t, refused, wait := s.limiter.reserve(addr, s.isAdmin(addr))
	if t == nil {
		s.logins.WithLabelValues(refused).Inc()
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+0.999)))
		msg := fmt.Sprintf("too many failed logins: try again in %s", wait.Round(time.Second))
		switch refused {
		case refusedBusy:
			msg = "a login from this address (or too many from outside web.admin_from) is being checked: try again in a second"
		case refusedGlobal:
			msg = fmt.Sprintf("too many failed logins from outside web.admin_from: logins from there are locked for %s", wait.Round(time.Second))
		}
		writeErr(w, http.StatusTooManyRequests, refused, msg)
		return
	}
	ok := s.verify(h, body.Password)
	if lockedOut := t.done(ok); !ok {
		s.logins.WithLabelValues("bad_password").Inc()
		s.log.Warn("web: failed login", "remote", who)
		if lockedOut {
			s.opts.Event("web.lockout", who, "web logins from "+who+" locked out after repeated failures")
		}
		writeErr(w, http.StatusUnauthorized, "bad_password", "wrong password")
		return
	}
	s.logins.WithLabelValues("ok").Inc()
	id, csrf := s.sessions.create(who)
	setCookie(w, r, cookieSession, id, 0)
	setCookie(w, r, cookieCSRF, "", -1)
	s.opts.Event("web.login", who, "web login from "+who)
	writeJSON(w, http.StatusOK, map[string]any{"logged_in": true, "csrf": csrf})
}

// authorize checks the session and CSRF token of an action POST.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) (string, bool) {
	if !sameOrigin(r) {
		writeErr(w, http.StatusForbidden, "csrf", "cross-origin request refused")
		return "", false
	}
	if a, _ := clientAddr(r); !s.mayAct(a) {
		writeErr(w, http.StatusForbidden, "not_admin", a.String()+" may read this page but not act: it is not in web.admin_from")
		return "", false
	}
	c, err := r.Cookie(cookieSession)
	if err != nil {
		writeErr(w, http.StatusUnauthorized, "login_required", "log in first")
		return "", false
	}
	sess, ok := s.sessions.get(c.Value)
	if !ok {
		writeErr(w, http.StatusUnauthorized, "login_required", "session expired: log in again")
		return "", false
	}
	if !equalToken(r.Header.Get(headerCSRF), sess.csrf) {
		writeErr(w, http.StatusForbidden, "csrf", "missing or wrong CSRF token: reload the page")
		return "", false
	}
	return c.Value, true
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	id, ok := s.authorize(w, r)
	if !ok {
		return
	}
	s.sessions.delete(id)
	setCookie(w, r, cookieSession, "", -1)
	writeJSON(w, http.StatusOK, map[string]any{"logged_in": false})
}

func (s *Server) action(w http.ResponseWriter, r *http.Request) {
	method := r.PathValue("method")
	known := false
	for _, a := range Actions {
		known = known || a == method
	}
	if !known {
		writeErr(w, http.StatusNotFound, ctl.CodeNotFound, fmt.Sprintf("%q is not a web action (actions: %v)", method, Actions))
		return
	}
	if _, ok := s.authorize(w, r); !ok {
		s.actions.WithLabelValues(method, "refused").Inc()
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		writeErr(w, http.StatusBadRequest, ctl.CodeBadRequest, "request body unreadable or too large")
		return
	}
	var params json.RawMessage
	if len(body) > 0 {
		if !json.Valid(body) {
			writeErr(w, http.StatusBadRequest, ctl.CodeBadRequest, "params are not JSON")
			return
		}
		params = body
	}
	addr, _ := clientAddr(r)
	res, err := s.call(r.Context(), method, params)
	result := "ok"
	if err != nil {
		result = ctl.CodeOf(err)
	}
	s.actions.WithLabelValues(method, result).Inc()
	s.log.Info("web action", "method", method, "params", string(params), "remote", addr.String(), "result", result)
	s.reply(w, res, err)
}
