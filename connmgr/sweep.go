package connmgr

import (
	"context"
	"time"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// maxBatch bounds the ids in one list-form keep-alive (Pushpin uses 128).
const maxBatch = 128

// sweepLoop sends keep-alives (every cfg.KeepAlive per session, batched per
// server toward servers that accept list-form ids) and expires sessions the
// server has not spoken to for cfg.SessionTimeout.
func (s *Server) sweepLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.Sweep)
	defer t.Stop()
	var due []*session
	batches := map[string][]*session{}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			due = s.sweep(now, due[:0], batches)
		}
	}
}

func (s *Server) sweep(now time.Time, due []*session, batches map[string][]*session) []*session {
	n := now.UnixNano()
	kaBefore, expBefore := n-int64(s.cfg.KeepAlive), n-int64(s.cfg.SessionTimeout)
	for i := range s.sessions {
		sh := &s.sessions[i]
		sh.mu.RLock()
		for _, ss := range sh.m {
			if ss.lastIn.Load() < expBefore {
				select {
				case ss.inbox <- expirePacket:
				default: // full: next sweep
				}
				continue
			}
			if ss.lastOut.Load() < kaBefore {
				due = append(due, ss)
			}
		}
		sh.mu.RUnlock()
	}
	for _, ss := range due {
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
		batches[to] = append(batches[to], ss)
	}
	for to, list := range batches {
		for len(list) > 0 {
			k := min(len(list), maxBatch)
			s.sendBatch(to, list[:k])
			list = list[k:]
		}
		delete(batches, to)
	}
	clear(due)
	return due
}

// sendBatch sends one list-form keep-alive for sessions of server to. The
// sessions stay locked until the packet is queued, so no packet of theirs
// with a later seq can overtake it. Only the sweeper holds more than one
// session lock, so this cannot deadlock.
func (s *Server) sendBatch(to string, list []*session) {
	p := &zhttp.Packet{From: s.cfg.ID, Type: zhttp.KeepAlive, Ext: zhttp.Ext{Multi: true}}
	locked := list[:0]
	now := time.Now().UnixNano()
	for _, ss := range list {
		ss.mu.Lock()
		if ss.closed || ss.to != to || ss.handoff {
			ss.mu.Unlock()
			continue
		}
		p.IDs = append(p.IDs, zhttp.IDSeq{ID: ss.id, Seq: ss.outSeq})
		ss.outSeq++
		ss.lastOut.Store(now)
		locked = append(locked, ss)
	}
	if len(p.IDs) > 0 {
		select {
		case s.routerQ <- routed{to: to, msg: p.AppendMessage(nil)}:
		case <-s.done:
		}
	}
	for _, ss := range locked {
		ss.mu.Unlock()
	}
}
