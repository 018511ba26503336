// Package ntptest is an NTP server for tests: it answers SNTP requests
// on loopback (or any address a test gives) with the local clock moved
// by an offset the test sets, as a server whose clock differs from the
// client's would.
package ntptest

import (
	"encoding/binary"
	"net"
	"sync"
	"time"
)

// Server answers NTP client requests (mode 3) with mode 4 replies.
type Server struct {
	conn *net.UDPConn
	mu   sync.Mutex
	// Ahead is how far the server's clock is ahead of time.Now().
	ahead   time.Duration
	stratum uint8
	leap    uint8
	silent  bool
	asked   int
	done    chan struct{}
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves until Close.
func Start(addr string) (*Server, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	c, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, err
	}
	s := &Server{conn: c, stratum: 2, done: make(chan struct{})}
	go s.serve()
	return s, nil
}

// Addr is the server's IP:port.
func (s *Server) Addr() string { return s.conn.LocalAddr().String() }

// SetAhead sets how far the server's clock is ahead of the local one.
func (s *Server) SetAhead(d time.Duration) { s.mu.Lock(); s.ahead = d; s.mu.Unlock() }

// SetStratum sets the stratum it answers (0: a kiss-of-death).
func (s *Server) SetStratum(n uint8) { s.mu.Lock(); s.stratum = n; s.mu.Unlock() }

// SetUnsynchronised makes it answer with the leap indicator "not in sync".
func (s *Server) SetUnsynchronised(on bool) {
	s.mu.Lock()
	s.leap = 0
	if on {
		s.leap = 3
	}
	s.mu.Unlock()
}

// SetSilent makes it read requests and answer none.
func (s *Server) SetSilent(on bool) { s.mu.Lock(); s.silent = on; s.mu.Unlock() }

// Asked is how many requests it has read.
func (s *Server) Asked() int { s.mu.Lock(); defer s.mu.Unlock(); return s.asked }

// Close stops the server.
func (s *Server) Close() error {
	err := s.conn.Close()
	<-s.done
	return err
}

// ntpTime is t as a 64-bit NTP timestamp (seconds since 1900, 32.32).
func ntpTime(t time.Time) uint64 {
	const era = 2208988800 // 1900 -> 1970
	sec := uint64(t.Unix() + era)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return sec<<32 | frac
}

func (s *Server) serve() {
	defer close(s.done)
	buf := make([]byte, 512)
	for {
		n, from, err := s.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		recv := time.Now()
		s.mu.Lock()
		s.asked++
		ahead, stratum, leap, silent := s.ahead, s.stratum, s.leap, s.silent
		s.mu.Unlock()
		if silent || n < 48 || buf[0]&7 != 3 {
			continue
		}
		out := make([]byte, 48)
		version := buf[0] >> 3 & 7
		out[0] = leap<<6 | version<<3 | 4
		out[1] = stratum
		out[2] = buf[2]                                                                  // poll
		out[3] = 0xEC                                                                    // precision 2^-20
		binary.BigEndian.PutUint32(out[4:], 1<<16/100)                                   // root delay 10 ms
		binary.BigEndian.PutUint32(out[8:], 1<<16/100)                                   // root dispersion 10 ms
		copy(out[12:16], "TEST")                                                         // reference id
		binary.BigEndian.PutUint64(out[16:], ntpTime(recv.Add(ahead).Add(-time.Minute))) // reference time
		copy(out[24:32], buf[40:48])                                                     // originate = client's transmit
		binary.BigEndian.PutUint64(out[32:], ntpTime(recv.Add(ahead)))
		binary.BigEndian.PutUint64(out[40:], ntpTime(time.Now().Add(ahead)))
		s.conn.WriteToUDP(out, from)
	}
}
