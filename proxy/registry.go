package proxy

import (
	"hash/maphash"
	"sync"
)

// shardCount spreads registry lock contention over independent mutexes; the
// dispatch goroutines (condure stream, zurl) and the ticker hit the map
// concurrently, session creation and removal rarely.
const shardCount = 32

// registry maps a session key to its session (an HTTP *session or a
// WebSocket *wsSession). It is a sharded map: every lookup takes one
// shard's read lock for a few nanoseconds.
type registry[T comparable] struct {
	seed   maphash.Seed
	shards [shardCount]struct {
		mu sync.RWMutex
		m  map[string]T
	}
}

func newRegistry[T comparable]() *registry[T] {
	r := &registry[T]{seed: maphash.MakeSeed()}
	for i := range r.shards {
		r.shards[i].m = make(map[string]T)
	}
	return r
}

func (r *registry[T]) shard(key string) int {
	return int(maphash.String(r.seed, key) % shardCount)
}

func (r *registry[T]) get(key string) T {
	sh := &r.shards[r.shard(key)]
	sh.mu.RLock()
	s := sh.m[key]
	sh.mu.RUnlock()
	return s
}

// add stores s under key unless the key is taken; it reports success.
func (r *registry[T]) add(key string, s T) bool {
	sh := &r.shards[r.shard(key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[key]; ok {
		return false
	}
	sh.m[key] = s
	return true
}

// del removes key if it still maps to s.
func (r *registry[T]) del(key string, s T) {
	sh := &r.shards[r.shard(key)]
	sh.mu.Lock()
	if sh.m[key] == s {
		delete(sh.m, key)
	}
	sh.mu.Unlock()
}

// each calls fn for every session, one shard at a time; fn must not touch
// the registry.
func (r *registry[T]) each(fn func(T)) {
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.RLock()
		for _, s := range sh.m {
			fn(s)
		}
		sh.mu.RUnlock()
	}
}

// clientKey is the registry key of a session seen from the connection
// manager: servers identify sessions by (sender, id).
func clientKey(from, id string) string { return from + "\x00" + id }
