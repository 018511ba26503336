package balancer

import (
	"sync"
	"sync/atomic"
)

const nShards = 64

// shardMap is a map split over 64 locks, so that workers handling
// different calls rarely contend.
type shardMap[K comparable, V any] struct {
	shards [nShards]struct {
		mu sync.Mutex
		m  map[K]V
		_  [40]byte // keep shards on separate cache lines
	}
	shard func(K) int
	n     atomic.Int64 // entries, kept as they change: a cap's check reads it lock-free
}

// newShardMap is a string-keyed shardMap (transactions by key, dialogs
// by Call-ID).
func newShardMap[V any]() *shardMap[string, V] {
	return newShardMapOf[string, V](shardOf[string])
}

// newSeqMap is a shardMap keyed by a sequence number, which spreads
// itself over the shards.
func newSeqMap[V any]() *shardMap[uint64, V] {
	return newShardMapOf[uint64, V](func(k uint64) int { return int(k % nShards) })
}

func newShardMapOf[K comparable, V any](shard func(K) int) *shardMap[K, V] {
	s := &shardMap[K, V]{shard: shard}
	for i := range s.shards {
		s.shards[i].m = make(map[K]V)
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

func (s *shardMap[K, V]) get(k K) (V, bool) {
	sh := &s.shards[s.shard(k)]
	sh.mu.Lock()
	v, ok := sh.m[k]
	sh.mu.Unlock()
	return v, ok
}

// getBytes is get on a string-keyed map with the key in bytes (no
// string made for the lookup).
func getBytes[V any](s *shardMap[string, V], k []byte) (V, bool) {
	sh := &s.shards[shardOf(k)]
	sh.mu.Lock()
	v, ok := sh.m[string(k)]
	sh.mu.Unlock()
	return v, ok
}

func (s *shardMap[K, V]) put(k K, v V) {
	sh := &s.shards[s.shard(k)]
	sh.mu.Lock()
	l := len(sh.m)
	sh.m[k] = v
	s.n.Add(int64(len(sh.m) - l))
	sh.mu.Unlock()
}

func (s *shardMap[K, V]) del(k K) {
	sh := &s.shards[s.shard(k)]
	sh.mu.Lock()
	l := len(sh.m)
	delete(sh.m, k)
	s.n.Add(int64(len(sh.m) - l))
	sh.mu.Unlock()
}

// update runs fn under the key's shard lock with the current value (ok
// false when absent); fn returns the new value and whether to keep it.
func (s *shardMap[K, V]) update(k K, fn func(v V, ok bool) (V, bool)) {
	sh := &s.shards[s.shard(k)]
	sh.mu.Lock()
	l := len(sh.m)
	v, ok := sh.m[k]
	nv, keep := fn(v, ok)
	if keep {
		sh.m[k] = nv
	} else if ok {
		delete(sh.m, k)
	}
	s.n.Add(int64(len(sh.m) - l))
	sh.mu.Unlock()
}

func (s *shardMap[K, V]) len() int {
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
func (s *shardMap[K, V]) each(fn func(k K, v V) (keep bool)) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		l := len(sh.m)
		for k, v := range sh.m {
			if !fn(k, v) {
				delete(sh.m, k)
			}
		}
		s.n.Add(int64(len(sh.m) - l))
		sh.mu.Unlock()
	}
}

// viewBytes runs fn under the shard lock of a string-keyed map's entry
// named in bytes (no string made), with ok false when it is absent.
func viewBytes[V any](s *shardMap[string, V], k []byte, fn func(v V, ok bool)) {
	sh := &s.shards[shardOf(k)]
	sh.mu.Lock()
	v, ok := sh.m[string(k)]
	fn(v, ok)
	sh.mu.Unlock()
}
