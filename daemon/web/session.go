package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"sync"
	"time"
)

// Session lifetimes.
const (
	SessionIdle = 30 * time.Minute
	SessionMax  = 12 * time.Hour
	maxSessions = 64
)

type session struct {
	csrf    string
	created time.Time
	seen    time.Time
	addr    string
}

// sessions is the in-memory session table (a restart logs everyone out).
type sessions struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[string]*session
}

func newSessions(now func() time.Time) *sessions {
	return &sessions{now: now, m: map[string]*session{}}
}

func token() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b)
}

// create starts a session and returns its id and CSRF token.
func (s *sessions) create(addr string) (id, csrf string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.expireLocked(now)
	if len(s.m) >= maxSessions { // drop the oldest
		var oldID string
		var old time.Time
		for k, v := range s.m {
			if oldID == "" || v.created.Before(old) {
				oldID, old = k, v.created
			}
		}
		delete(s.m, oldID)
	}
	id, csrf = token(), token()
	s.m[id] = &session{csrf: csrf, created: now, seen: now, addr: addr}
	return id, csrf
}

// get returns the live session id, touching it.
func (s *sessions) get(id string) (*session, bool) {
	if id == "" {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	v, ok := s.m[id]
	if !ok {
		return nil, false
	}
	if now.Sub(v.seen) > SessionIdle || now.Sub(v.created) > SessionMax {
		delete(s.m, id)
		return nil, false
	}
	v.seen = now
	cp := *v
	return &cp, true
}

func (s *sessions) delete(id string) {
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}

// clear logs everyone out (the password changed).
func (s *sessions) clear() {
	s.mu.Lock()
	s.m = map[string]*session{}
	s.mu.Unlock()
}

func (s *sessions) expireLocked(now time.Time) {
	for k, v := range s.m {
		if now.Sub(v.seen) > SessionIdle || now.Sub(v.created) > SessionMax {
			delete(s.m, k)
		}
	}
}

func equalToken(a, b string) bool {
	return a != "" && len(a) == len(b) && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
