package handler

// Fan-out: a publish delivered to the holds of its channel, batched into
// shared packets per connection manager, and the channel subscriptions.

import (
	"time"

	"github.com/pushpin-go/pushpin/proto/grip"
	"github.com/pushpin-go/pushpin/proto/publish"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// maxBatchIDs bounds a data packet shared by many sessions (ext.multi-data):
// about 30 bytes of id list per session, so ~32 KB of ids a packet, which
// lets the connection manager start writing while later packets are encoded.
const maxBatchIDs = 1024

// firstBatchIDs is the size of a publish's first shared packet to each
// connection manager; each next one is four times bigger, up to
// maxBatchIDs. Encoding costs about 0.5 µs a session, so a full first
// packet to each of six connection managers would leave the last one idle
// for ~3 ms of a fan-out it could have started on.
const firstBatchIDs = 64

// senderBatch collects, during one publish, the sessions of one connection
// manager that get the content in a shared packet.
type senderBatch struct {
	sender string
	ids    []zhttp.IDSeq
	limit  int // send the packet once it has this many ids
}

func (e *engine) subscribe(ch string, s *session) {
	set := e.hub[ch]
	if set == nil {
		set = map[*session]struct{}{}
		e.hub[ch] = set
		if e.wsHub[ch] == nil {
			e.channelWanted(ch, true)
		}
	}
	set[s] = struct{}{}
}

func (e *engine) unsubscribe(ch string, s *session) {
	set := e.hub[ch]
	if set == nil {
		return
	}
	delete(set, s)
	if len(set) == 0 {
		delete(e.hub, ch)
		if e.wsHub[ch] == nil {
			e.channelWanted(ch, false)
		}
	}
}

// channelWanted tells the SUB input that ch now has local subscribers (of
// either kind: HTTP holds in hub, WebSocket sessions in wsHub) or none.
func (e *engine) channelWanted(ch string, add bool) {
	if e.subs != nil {
		e.subs.set(ch, add)
	}
}

// publish delivers one item to the channel's holds. The item's payload was
// prepared once by the parser. Stream holds behind a connection manager
// that accepts list-form ids on data packets (ext.multi-data: ours) get
// the content in one packet per connection manager, listing every session
// with its seq, so the body is encoded once per publish rather than once
// per subscriber; the others (condure, a session short of credits or with
// queued data) get their own packet as before.
func (e *engine) publish(it *publish.Item) {
	if it.WSMessage != nil {
		e.wsPublish(it)
	}
	subs := e.hub[it.Channel]
	if len(subs) == 0 {
		return
	}
	now := time.Now()
	for s := range subs {
		if s.done {
			continue
		}
		switch s.hold {
		case grip.HoldStream:
			hs := it.HTTPStream
			if hs == nil {
				continue
			}
			switch hs.Action {
			case publish.ActionSend:
				if e.batchable(s, hs.Content) {
					e.addToBatch(s, hs.Content)
					s.outSeq++
					s.credits -= int64(len(hs.Content))
					s.lastOut, s.lastData = now, now
					continue
				}
				if e.enqueue(s, hs.Content, it.Channel) {
					e.flush(s)
				}
			case publish.ActionClose:
				s.done = true
				s.pending = append(s.pending, chunk{final: true})
				e.flush(s)
			default:
				e.log.Debug().Str("action", hs.Action.String()).Msg("http-stream action not supported yet, ignored")
			}
		case grip.HoldResponse:
			hr := it.HTTPResponse
			if hr == nil {
				continue
			}
			if hr.Action != publish.ActionSend {
				e.log.Debug().Str("action", hr.Action.String()).Msg("http-response action not supported yet, ignored")
				continue
			}
			r, err := hr.Render(s.orig)
			if err != nil {
				e.log.Warn().Err(err).Str("channel", it.Channel).Msg("rendering http-response publish")
				s.stopTimers()
				e.fail(s)
				continue
			}
			s.stopTimers()
			e.startResponse(s, r, true)
		}
	}
	if it.HTTPStream != nil {
		e.sendBatches(it.HTTPStream.Content)
	}
}

// batchable reports whether content can go to s inside a shared packet:
// its connection manager takes list-form data packets, nothing is queued
// before it, its credits cover the whole body, and it has no user-data
// (which is per session and would have to be echoed).
func (e *engine) batchable(s *session, content []byte) bool {
	return s.mdata && len(content) > 0 && len(s.pending) == 0 && s.credits >= int64(len(content)) && s.userData == nil
}

// addToBatch lists s in its connection manager's shared packet for this
// publish, and sends the packet once it is full: the connection managers
// start writing to their clients while the rest of the subscribers are
// still being listed, and since the subscribers come in hash order, each
// connection manager's packets go out spread over the whole loop rather
// than one connection manager after the other.
func (e *engine) addToBatch(s *session, content []byte) {
	b := s.batch
	if b == nil {
		if b = e.batches[s.sender]; b == nil {
			b = &senderBatch{sender: s.sender}
			e.batches[s.sender] = b
		}
		s.batch = b // saves hashing the sender per subscriber and publish
	}
	if b.limit == 0 { // first session of this publish
		e.inBatch = append(e.inBatch, b)
		b.limit = firstBatchIDs
	}
	b.ids = append(b.ids, zhttp.IDSeq{ID: s.id, Seq: s.outSeq})
	if len(b.ids) >= b.limit {
		e.sendBatch(b, content)
		b.limit = min(b.limit*4, maxBatchIDs)
	}
}

func (e *engine) sendBatch(b *senderBatch, content []byte) {
	p := zhttp.Packet{From: e.id, IDs: b.ids, Body: content, More: true}
	e.send(p.AppendPub(make([]byte, 0, len(b.sender)+len(content)+64+len(b.ids)*32), b.sender))
	clear(b.ids)
	b.ids = b.ids[:0]
}

// sendBatches emits what publish left in the shared packets and resets
// them for the next publish.
func (e *engine) sendBatches(content []byte) {
	for _, b := range e.inBatch {
		if len(b.ids) > 0 {
			e.sendBatch(b, content)
		}
		b.limit = 0
	}
	clear(e.inBatch)
	e.inBatch = e.inBatch[:0]
}
