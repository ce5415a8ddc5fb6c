package connmgr

import (
	"context"
	"time"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// maxBatch bounds the ids in one list-form keep-alive or credit (Pushpin
// uses 128).
const maxBatch = 128

// sweepLoop sends keep-alives (every cfg.KeepAlive per session, batched per
// server toward servers that accept list-form ids), expires sessions the
// server has not spoken to for cfg.SessionTimeout, and ends connections
// whose client was inactive past their deadline (cfg.StreamTimeout).
func (s *Server) sweepLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.Sweep)
	defer t.Stop()
	var sw sweeper
	sw.batches = map[string][]*session{}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.sweep(now, &sw)
			s.router.reap()
		}
	}
}

// sweeper is the sweep's reused scratch.
type sweeper struct {
	due, expired []*session
	late         []*conn
	batches      map[string][]*session
}

func (s *Server) sweep(now time.Time, sw *sweeper) {
	n := now.UnixNano()
	kaBefore, expBefore := n-int64(s.cfg.KeepAlive), n-int64(s.cfg.SessionTimeout)
	// One pass over the slot table: the timestamps compared are in it, so
	// only a connection or session with something due is dereferenced.
	s.slots.each(func(_ uint32, sl *slot, c *conn) {
		if d := sl.deadline.Load(); d != 0 && d <= n {
			sw.late = append(sw.late, c)
		}
		if sl.lastIn.Load() < expBefore || sl.lastOut.Load() < kaBefore {
			ss := sl.ss.Load()
			switch {
			case ss == nil:
			case sl.lastIn.Load() < expBefore:
				sw.expired = append(sw.expired, ss)
			default:
				sw.due = append(sw.due, ss)
			}
		}
	})
	// Posted after the walk: the handlers close connections.
	for _, ss := range sw.expired {
		ss.c.post(event{kind: evExpire, ss: ss}, nil)
	}
	for _, c := range sw.late {
		c.post(event{kind: evTimeout}, nil)
	}
	for _, ss := range sw.due {
		ss.mu.Lock()
		if ss.closed || ss.to == "" || ss.handoff {
			ss.mu.Unlock()
			continue
		}
		if !ss.multi {
			s.stampLocked(ss, &zhttp.Packet{Type: zhttp.KeepAlive})
			ss.mu.Unlock()
			continue
		}
		to := ss.to
		ss.mu.Unlock()
		sw.batches[to] = append(sw.batches[to], ss)
	}
	for to, list := range sw.batches {
		for len(list) > 0 {
			k := min(len(list), maxBatch)
			s.sendBatch(to, list[:k])
			list = list[k:]
		}
		delete(sw.batches, to)
	}
	clear(sw.due)
	clear(sw.expired)
	clear(sw.late)
	sw.due, sw.expired, sw.late = sw.due[:0], sw.expired[:0], sw.late[:0]
}

// sendBatch sends one list-form keep-alive for sessions of server to. The
// sessions stay locked until the packet is queued, so no packet of theirs
// with a later seq can overtake it. It only TryLocks (a busy session gets
// its keep-alive at the next sweep): workers hold several session locks
// too while they batch credits, and a blocking lock here could close a
// cycle with one of them.
func (s *Server) sendBatch(to string, list []*session) {
	p := &zhttp.Packet{From: s.cfg.ID, Type: zhttp.KeepAlive, Ext: ourExt}
	locked := list[:0]
	now := time.Now().UnixNano()
	for _, ss := range list {
		if !ss.mu.TryLock() {
			continue
		}
		if ss.closed || ss.to != to || ss.handoff {
			ss.mu.Unlock()
			continue
		}
		p.IDs = append(p.IDs, zhttp.IDSeq{ID: ss.id, Seq: ss.outSeq})
		ss.outSeq++
		ss.sl.lastOut.Store(now)
		locked = append(locked, ss)
	}
	if len(p.IDs) > 0 {
		s.routePacket(to, p)
	}
	for _, ss := range locked {
		ss.mu.Unlock()
	}
}
