package zurl

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// sessKey identifies a session as a zhttp server does: the requester's
// instance id and its session id.
type sessKey struct{ from, id string }

const tableShards = 32

// sessionTable maps keys to sessions. It is sharded so that the ROUTER
// goroutine's lookups (one per packet) rarely wait on the PULL goroutine's
// inserts or the session goroutines' removals.
type sessionTable struct {
	seed   maphash.Seed
	shards [tableShards]struct {
		mu sync.Mutex
		m  map[sessKey]*session
		_  [40]byte // keep shards on separate cache lines
	}
}

func (t *sessionTable) init() {
	t.seed = maphash.MakeSeed()
	for i := range t.shards {
		t.shards[i].m = map[sessKey]*session{}
	}
}

func (t *sessionTable) shard(k sessKey) int {
	return int(maphash.String(t.seed, k.id) % tableShards)
}

func (t *sessionTable) get(k sessKey) *session {
	sh := &t.shards[t.shard(k)]
	sh.mu.Lock()
	ss := sh.m[k]
	sh.mu.Unlock()
	return ss
}

func (t *sessionTable) put(k sessKey, ss *session) {
	sh := &t.shards[t.shard(k)]
	sh.mu.Lock()
	sh.m[k] = ss
	sh.mu.Unlock()
}

// remove deletes k if it still maps to ss and reports whether it did.
func (t *sessionTable) remove(k sessKey, ss *session) bool {
	sh := &t.shards[t.shard(k)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m[k] != ss {
		return false
	}
	delete(sh.m, k)
	return true
}

// each calls fn for every session; fn runs without any shard lock held.
func (t *sessionTable) each(fn func(*session)) {
	var list []*session
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for _, ss := range sh.m {
			list = append(list, ss)
		}
		sh.mu.Unlock()
	}
	for _, ss := range list {
		fn(ss)
	}
}

// timers are the zhttp keep-alive and expiry periods, the ack delay
// (session.ack) and how long an idle worker waits (workers.go); tests
// change them.
type timers struct {
	sweep, keepAlive, expiry, ack, worker time.Duration
	wsClose                               time.Duration // zero: wsCloseWait
}

var defaultTimers = timers{sweep: sweepInterval, keepAlive: keepAliveInterval, expiry: sessionExpiry, ack: ackDelay,
	worker: 10 * time.Second, wsClose: wsCloseWait}

// sweepLoop expires silent sessions and sends keep-alives, batched per
// requester for requesters that announced ext.multi.
func (s *Server) sweepLoop(ctx context.Context) {
	tick := time.NewTicker(s.timers.sweep)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			s.sweep(now)
		}
	}
}

func (s *Server) sweep(now time.Time) {
	s.http.lean.closeIdle(leanIdleTimeout)
	n := now.UnixNano()
	batches := map[string][]*session{}
	s.sess.each(func(ss *session) {
		if n-ss.lastIn.Load() > int64(s.timers.expiry) {
			s.log.Info().Str("id", ss.key.id).Str("from", ss.key.from).Msg("session expired")
			ss.fail("session-timeout")
			ss.abort()
			return
		}
		if n-ss.lastOut.Load() < int64(s.timers.keepAlive) {
			return
		}
		if !ss.multi {
			ss.send(&zhttp.Packet{Type: zhttp.KeepAlive}, false)
			return
		}
		batches[ss.key.from] = append(batches[ss.key.from], ss)
	})
	for from, list := range batches {
		for len(list) > 0 {
			k := min(len(list), maxBatch)
			s.keepAliveBatch(from, list[:k], n)
			list = list[k:]
		}
	}
}

// keepAliveBatch sends one list-form keep-alive for sessions of one
// requester. Every session stays locked until the packet is queued, so its
// seq cannot be overtaken by a packet its own goroutine sends meanwhile.
// Only this goroutine ever holds more than one session lock, so taking them
// in any order cannot deadlock.
func (s *Server) keepAliveBatch(from string, list []*session, now int64) {
	p := &zhttp.Packet{Type: zhttp.KeepAlive, IDs: make([]zhttp.IDSeq, 0, len(list))}
	locked := list[:0:0]
	for _, ss := range list {
		ss.mu.Lock()
		if ss.finished {
			ss.mu.Unlock()
			continue
		}
		locked = append(locked, ss)
		p.IDs = append(p.IDs, zhttp.IDSeq{ID: ss.key.id, Seq: ss.outSeq})
		ss.outSeq++
		ss.lastOut.Store(now)
	}
	if len(p.IDs) > 0 {
		s.reply(from, p)
	}
	for _, ss := range locked {
		ss.mu.Unlock()
	}
}
