package edge

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// shards splits the table so that readers of several sockets rarely meet
// on one lock.
const shards = 64

// rate is one source's request count over a sliding window: the count of
// the current window and of the previous one, weighted by how much of it
// still overlaps the last Per (Cloudflare's approximation).
type rate struct {
	start int64 // current window's start, unix ns
	cur   uint32
	prev  uint32
}

type banEntry struct {
	since, until int64
	dropped      uint64
	reason       string
}

type shard struct {
	mu  sync.Mutex
	src map[[16]byte]rate
	ban map[[16]byte]banEntry
}

// table is the tracked sources and the bans, both capped per shard.
// Keys are 16-byte addresses (no pointers for the GC to scan): IPv4
// mapped, IPv6 cut to its /64 (what one subscriber gets).
type table struct {
	sh         [shards]shard
	evicted    atomic.Uint64
	banEvicted atomic.Uint64
}

func (t *table) init() {
	for i := range t.sh {
		t.sh[i].src = map[[16]byte]rate{}
		t.sh[i].ban = map[[16]byte]banEntry{}
	}
}

func keyOf(a netip.Addr) [16]byte {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		a = p.Addr()
	}
	return a.As16()
}

func keyString(k [16]byte) string {
	a := netip.AddrFrom16(k)
	if a.Is4In6() {
		return a.Unmap().String()
	}
	return netip.PrefixFrom(a, 64).String()
}

// parseSource reads an address as given by an operator ("192.0.2.5",
// "2001:db8::1", "2001:db8::/64").
func parseSource(s string) (netip.Addr, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Addr(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, &SourceError{s}
	}
	return a, nil
}

// SourceError is an operator's source that is not an address.
type SourceError struct{ Source string }

func (e *SourceError) Error() string { return "not an IP address: " + e.Source }

func (t *table) shard(k [16]byte) *shard {
	h := uint32(2166136261)
	for _, c := range k {
		h ^= uint32(c)
		h *= 16777619
	}
	return &t.sh[h%shards]
}

// hit looks k up: banned tells the message is to be dropped; when count
// is set the request is counted, and newBan tells that this one crossed
// the threshold.
func (t *table) hit(k [16]byte, now int64, count bool, p *policy) (banned, newBan bool) {
	s := t.shard(k)
	s.mu.Lock()
	if b, ok := s.ban[k]; ok {
		if now < b.until {
			b.dropped++
			s.ban[k] = b
			s.mu.Unlock()
			return true, false
		}
		delete(s.ban, k)
	}
	if !count {
		s.mu.Unlock()
		return false, false
	}
	r, ok := s.src[k]
	if !ok {
		if len(s.src) >= p.perShard {
			for victim := range s.src { // map order: an arbitrary entry
				delete(s.src, victim)
				t.evicted.Add(1)
				break
			}
		}
		r.start = now
	}
	if el := now - r.start; el >= p.per {
		if el < 2*p.per {
			r.prev = r.cur
		} else {
			r.prev = 0
		}
		r.cur = 0
		r.start = now - el%p.per
	}
	r.cur++
	est := int64(r.cur) + int64(r.prev)*(p.per-(now-r.start))/p.per
	if est > int64(p.requests) {
		delete(s.src, k)
		if len(s.ban) >= p.perShard {
			for victim := range s.ban {
				delete(s.ban, victim)
				t.banEvicted.Add(1)
				break
			}
		}
		s.ban[k] = banEntry{since: now, until: now + p.ban, reason: ReasonFlood, dropped: 1}
		s.mu.Unlock()
		return true, true
	}
	s.src[k] = r
	s.mu.Unlock()
	return false, false
}

// restore puts back a stored ban; false when its source is unreadable or
// the shard is full.
func (t *table) restore(b Ban, perShard int) bool {
	a, err := parseSource(b.Source)
	if err != nil {
		return false
	}
	k := keyOf(a)
	s := t.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ban) >= perShard {
		return false
	}
	r := b.Reason
	if r == "" {
		r = ReasonFlood
	}
	s.ban[k] = banEntry{since: b.Since.UnixNano(), until: b.Until.UnixNano(), dropped: b.Dropped, reason: r}
	return true
}

func (t *table) bans(now int64) []Ban {
	var out []Ban
	for i := range t.sh {
		s := &t.sh[i]
		s.mu.Lock()
		for k, b := range s.ban {
			if now < b.until {
				out = append(out, Ban{Source: keyString(k), Reason: b.reason, Since: time.Unix(0, b.since).UTC(),
					Until: time.Unix(0, b.until).UTC(), Dropped: b.dropped})
			}
		}
		s.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b Ban) int {
		if c := b.Since.Compare(a.Since); c != 0 {
			return c
		}
		return compareStrings(a.Source, b.Source)
	})
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (t *table) clear(k [16]byte) int {
	s := t.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.src, k)
	if _, ok := s.ban[k]; ok {
		delete(s.ban, k)
		return 1
	}
	return 0
}

func (t *table) clearAll() int {
	n := 0
	for i := range t.sh {
		s := &t.sh[i]
		s.mu.Lock()
		n += len(s.ban)
		clear(s.ban)
		clear(s.src)
		s.mu.Unlock()
	}
	return n
}

// sweep drops expired bans and sources idle for two windows; it returns
// the number of bans expired.
func (t *table) sweep(now int64, p *policy) int {
	n := 0
	for i := range t.sh {
		s := &t.sh[i]
		s.mu.Lock()
		for k, b := range s.ban {
			if now >= b.until {
				delete(s.ban, k)
				n++
			}
		}
		for k, r := range s.src {
			if now-r.start >= 2*p.per {
				delete(s.src, k)
			}
		}
		s.mu.Unlock()
	}
	return n
}

func (t *table) tracked() int { return t.sum(func(s *shard) int { return len(s.src) }) }

func (t *table) banCount() int { return t.sum(func(s *shard) int { return len(s.ban) }) }

// sum adds f over every shard, each under its lock.
func (t *table) sum(f func(*shard) int) int {
	n := 0
	for i := range t.sh {
		s := &t.sh[i]
		s.mu.Lock()
		n += f(s)
		s.mu.Unlock()
	}
	return n
}
