package proxy

import (
	"cmp"
	"slices"
	"sync/atomic"
)

// wsBatch gathers the handler messages that many WebSocket sessions may
// send their client at the same moment and writes each of them once per
// connection manager: one data packet with a list-form id (ext.multi-data)
// for all the sessions whose next frame it is. A batch belongs to one
// call on one goroutine: a multi-send (every session it names), or a
// list-form packet from a connection manager (the credits one message
// earned from many clients come back together, and let the next queued
// message go to all of them).
//
// Without it, a session that once ran short of credits (a publisher's
// burst is larger than the client's 8 KB window) got every later message
// in a packet of its own, 20 packets and 20 credit returns per message for
// 20 clients, and stayed so while the publisher kept the queue filled.
//
// Order: a session's batched messages leave before anything else of its
// own (pumpOut holds the rest back while s.batch is pending), in the order
// it queued them (msg numbers follow the multi-sends' order, and a
// session's queue is in that order). A session that held something back
// (s.repump) is pumped again once they are written, into the next round.
type wsBatch struct {
	px    *Proxy
	items []wsBatchItem
	// written is set once the batch's packets went out: s.batch pointing
	// here no longer holds the session back, and the session need not be
	// locked again just to forget it.
	written atomic.Bool
}

type wsBatchItem struct {
	s     *wsSession
	to    string // the session's connection manager
	msg   uint64
	kind  wsKind
	data  []byte
	reqID string
}

func newWSBatch(px *Proxy, n int) *wsBatch {
	return &wsBatch{px: px, items: make([]wsBatchItem, 0, n)}
}

// pending reports whether b holds messages not written yet.
func (b *wsBatch) pending() bool { return b != nil && !b.written.Load() }

// add is called under s.mu for a whole message that leaves s's queue (or
// would have entered it) within s's credits.
func (b *wsBatch) add(s *wsSession, f *wsFrame) {
	s.credits -= int64(len(f.data))
	s.batch, s.lastMsg = b, f.msg
	b.items = append(b.items, wsBatchItem{s: s, to: s.client.to, msg: f.msg, kind: f.kind, data: f.data, reqID: f.reqID})
}

// flush writes what was gathered, holding no session lock, then pumps the
// sessions that held something back (or whose message a shared packet
// could not take) into a new round, until a round gathers nothing.
func (b *wsBatch) flush() {
	for b != nil && len(b.items) > 0 {
		items := b.items
		if !slices.IsSortedFunc(items, cmpBatchItem) {
			slices.SortStableFunc(items, cmpBatchItem)
		}
		var back map[*wsSession][]wsFrame
		for i := 0; i < len(items); {
			j := i + 1
			for j < len(items) && items[j].msg == items[i].msg && items[j].to == items[i].to {
				j++
			}
			back = b.write(items[i:j], back)
			i = j
		}
		// From here on s.batch == b holds nothing back: a pumpOut that
		// saw it pending set s.repump first, so one of us pumps.
		b.written.Store(true)
		var next *wsBatch
		for i := range items {
			s := items[i].s
			fs, stalled := back[s]
			if !s.repump.Swap(false) && !stalled {
				continue
			}
			if next == nil {
				next = newWSBatch(b.px, 0)
			}
			delete(back, s)
			s.withIn(next, func() {
				if len(fs) > 0 {
					s.unbatch(fs) // one by one now (not newer than lastMsg)
				}
				s.pumpOut()
			})
		}
		b.items = nil // s.batch may keep b: it must not keep the messages
		b = next
	}
}

func cmpBatchItem(x, y wsBatchItem) int {
	if c := cmp.Compare(x.msg, y.msg); c != 0 {
		return c
	}
	return cmp.Compare(x.to, y.to)
}

// write sends one message to the sessions of items (one connection
// manager), at most maxSharedIDs ids a packet. A stream that cannot take
// it (closed, or, which pumpOut rules out, inside a fragmented message)
// gets it, and its later messages of this round, back into its queue
// (back), so nothing is lost or reordered.
func (b *wsBatch) write(items []wsBatchItem, back map[*wsSession][]wsFrame) map[*wsSession][]wsFrame {
	f := wsFrame{kind: items[0].kind, data: items[0].data}
	pkt := wsPacket(&f)
	sts := make([]*stream, 0, min(len(items), maxSharedIDs))
	for len(items) > 0 {
		k := min(len(items), maxSharedIDs)
		sts = sts[:0]
		for i := range items[:k] {
			it := &items[i]
			if _, stalled := back[it.s]; stalled {
				back[it.s] = append(back[it.s], it.frame())
				continue
			}
			sts = append(sts, it.s.client)
		}
		if len(sts) > 0 {
			if skipped := b.px.cw.writeShared(sts, pkt); len(skipped) > 0 {
				byStream := make(map[*stream]*wsBatchItem, k)
				for i := range items[:k] {
					byStream[items[i].s.client] = &items[i]
				}
				if back == nil {
					back = map[*wsSession][]wsFrame{}
				}
				for _, st := range skipped {
					it := byStream[st]
					back[it.s] = append(back[it.s], it.frame())
				}
			}
		}
		for i := range items[:k] {
			if it := &items[i]; it.reqID != "" {
				if _, stalled := back[it.s]; !stalled {
					it.s.ackSend(it.reqID)
				}
			}
		}
		items = items[k:]
	}
	return back
}

func (it *wsBatchItem) frame() wsFrame {
	return wsFrame{kind: it.kind, data: it.data, reqID: it.reqID, msg: it.msg}
}

// unbatch puts messages a shared packet could not take back at the head
// of the queue, with their credits.
func (s *wsSession) unbatch(fs []wsFrame) {
	for _, f := range fs {
		s.credits += int64(len(f.data))
		s.toClient.bytes += len(f.data)
	}
	s.toClient.q = append(fs, s.toClient.q...)
}

// canBatch reports whether f, next for the client, can go in a data packet
// shared with other sessions (ext.multi-data): a whole message of a
// multi-send newer than the last batched, the credits cover it, no
// message to the client is partly written, no user-data.
func (s *wsSession) canBatch(f *wsFrame) bool {
	return s.mdata && s.userData == nil && !s.outMid && f.msg > s.lastMsg && f.isContent() &&
		!f.cont && !f.more && int64(len(f.data)) <= s.credits
}

// heldBack reports whether messages of s wait in a batch other than the
// one of the event being handled: nothing may go to the client before
// them. That batch pumps s again once they are out (s.repump).
func (s *wsSession) heldBack() bool {
	if s.batch == s.inBatch || !s.batch.pending() {
		return false
	}
	s.repump.Store(true)
	if !s.batch.pending() {
		return false // written meanwhile: it may not have seen repump
	}
	return true
}
