package balancer

import "sync"

const nShards = 64

// shardMap is a string-keyed map split over 64 locks, so that workers
// handling different calls rarely contend.
type shardMap[V any] struct {
	shards [nShards]struct {
		mu sync.Mutex
		m  map[string]V
		_  [40]byte // keep shards on separate cache lines
	}
}

func newShardMap[V any]() *shardMap[V] {
	s := &shardMap[V]{}
	for i := range s.shards {
		s.shards[i].m = make(map[string]V)
	}
	return s
}

func shardOf[S string | []byte](k S) int {
	h := uint32(2166136261)
	for i := 0; i < len(k); i++ {
		h ^= uint32(k[i])
		h *= 16777619
	}
	return int(h % nShards)
}

func (s *shardMap[V]) get(k string) (V, bool) {
	sh := &s.shards[shardOf(k)]
	sh.mu.Lock()
	v, ok := sh.m[k]
	sh.mu.Unlock()
	return v, ok
}

// getBytes is get with the key in bytes (no string made for the lookup).
func (s *shardMap[V]) getBytes(k []byte) (V, bool) {
	sh := &s.shards[shardOf(k)]
	sh.mu.Lock()
	v, ok := sh.m[string(k)]
	sh.mu.Unlock()
	return v, ok
}

func (s *shardMap[V]) put(k string, v V) {
	sh := &s.shards[shardOf(k)]
	sh.mu.Lock()
	sh.m[k] = v
	sh.mu.Unlock()
}

func (s *shardMap[V]) del(k string) {
	sh := &s.shards[shardOf(k)]
	sh.mu.Lock()
	delete(sh.m, k)
	sh.mu.Unlock()
}

// update runs fn under the key's shard lock with the current value (ok
// false when absent); fn returns the new value and whether to keep it.
func (s *shardMap[V]) update(k string, fn func(v V, ok bool) (V, bool)) {
	sh := &s.shards[shardOf(k)]
	sh.mu.Lock()
	v, ok := sh.m[k]
	nv, keep := fn(v, ok)
	if keep {
		sh.m[k] = nv
	} else if ok {
		delete(sh.m, k)
	}
	sh.mu.Unlock()
}

func (s *shardMap[V]) len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// each calls fn for every entry of one shard at a time, under its lock.
func (s *shardMap[V]) each(fn func(k string, v V) (keep bool)) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for k, v := range sh.m {
			if !fn(k, v) {
				delete(sh.m, k)
			}
		}
		sh.mu.Unlock()
	}
}
