package proxy

import (
	"cmp"
	"slices"
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
// Order: a session's batched messages leave before anything else of
// its own (pumpOut holds the rest back while s.batch is set), in the
// order it queued them (msg numbers follow the multi-sends' order, and a
// session's queue is in that order), and the batch pumps the session
// again once they are written.
type wsBatch struct {
	px    *Proxy
	items []wsBatchItem
	seen  map[*wsSession]struct{}
}

type wsBatchItem struct {
	s     *wsSession
	to    string // the session's connection manager
	msg   uint64
	kind  wsKind
	data  []byte
	reqID string
}

func newWSBatch(px *Proxy) *wsBatch { return &wsBatch{px: px} }

// add is called by pumpOut, under s.mu, for a whole message it took from
// s.toClient within s's credits.
func (b *wsBatch) add(s *wsSession, f *wsFrame) {
	b.items = append(b.items, wsBatchItem{s: s, to: s.client.to, msg: f.msg, kind: f.kind, data: f.data, reqID: f.reqID})
}

// flush writes what was gathered, holding no session lock, then pumps
// each session again into a new round: messages queued behind the
// written ones that the credits allow (or that came meanwhile, held back
// by s.batch) go out the same way, frames that cannot be shared one by
// one. It returns when a round gathers nothing.
func (b *wsBatch) flush() {
	for len(b.items) > 0 {
		items := b.items
		b.items = nil
		slices.SortStableFunc(items, func(x, y wsBatchItem) int {
			if c := cmp.Compare(x.msg, y.msg); c != 0 {
				return c
			}
			return cmp.Compare(x.to, y.to)
		})
		var back map[*wsSession][]wsFrame
		for i := 0; i < len(items); {
			j := i + 1
			for j < len(items) && items[j].msg == items[i].msg && items[j].to == items[i].to {
				j++
			}
			back = b.write(items[i:j], back)
			i = j
		}
		if b.seen == nil {
			b.seen = make(map[*wsSession]struct{}, len(items))
		}
		for _, it := range items {
			s := it.s
			if _, ok := b.seen[s]; ok {
				continue
			}
			b.seen[s] = struct{}{}
			s.withIn(b, func() {
				s.batch = nil
				if fs := back[s]; len(fs) > 0 {
					s.unbatch(fs) // one by one now (they are not newer than lastMsg)
				}
				s.pumpOut()
			})
		}
		clear(b.seen)
	}
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
	var byStream map[*stream]*wsBatchItem
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
			for _, st := range b.px.cw.writeShared(sts, pkt) {
				if byStream == nil {
					byStream = make(map[*stream]*wsBatchItem, k)
					for i := range items[:k] {
						byStream[items[i].s.client] = &items[i]
					}
				}
				it := byStream[st]
				if back == nil {
					back = map[*wsSession][]wsFrame{}
				}
				back[it.s] = append(back[it.s], it.frame())
			}
		}
		for i := range items[:k] {
			if it := &items[i]; it.reqID != "" {
				if _, stalled := back[it.s]; !stalled {
					it.s.ackSend(it.reqID)
				}
			}
		}
		items, byStream = items[k:], nil
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
	}
	s.toClient.q = append(fs, s.toClient.q...)
	for _, f := range fs {
		s.toClient.bytes += len(f.data)
	}
}
