package handler

import (
	"sync/atomic"
	"time"
)

// DefaultStreamQueueSize is the default of [handler] stream_max_queue_size:
// how many bytes of published content a stream hold may have waiting for
// its client's credits before the handler gives up on the client. About a
// second of a 1 KB message a millisecond: room for the credit round trip
// and a publisher's bursts (a POST of many items lands at once), while a
// client that really cannot keep up is found out within seconds. Queued
// content is usually shared by every subscriber of the publish, so the
// bound is on what a client may fall behind, more than on memory.
const DefaultStreamQueueSize = 1 << 20

// readingSlack is how many times the bound a client may fall behind while
// it is still taking data (its credits came back within readingGrace):
// then the writes to it, not its reading, may be what is late (a burst, a
// busy machine), and ending it would cut off a client that keeps up. One
// whose credits have stopped is ended at the bound itself.
const (
	readingSlack = 32
	readingGrace = time.Second
)

// endWait is how long the end of a response waits for a client that
// takes no data at all (its credits stopped) before its connection is
// closed instead (maintain looks at it at least every zhttp keep-alive
// period): a client that reads nothing would otherwise hold its
// connection and its queued message until the connection manager's
// stream timeout, by default half an hour.
const endWait = 30 * time.Second

// chunkOverhead is what a queued chunk costs beyond its body (its place in
// pending, its share of a packet): charged against the bound so that tiny
// messages cannot queue without limit either.
const chunkOverhead = 64

// backlogStats counts the stream holds ended for falling behind. The
// engine adds; maintain logs the total when it has grown.
type backlogStats struct {
	ended  atomic.Uint64
	logged uint64 // engine goroutine only
	lastAt time.Time
}

// queueLimit is the byte bound on a stream hold's pending content.
func (e *engine) queueLimit() int64 {
	if e.maxQueue > 0 {
		return e.maxQueue
	}
	return DefaultStreamQueueSize
}

// queue appends body to what s has waiting, unless that would take s past
// the bound (or, while s is still taking data, past readingSlack times
// it); it reports whether it did.
func (e *engine) queue(s *session, body []byte) bool {
	cost := int64(len(body)) + chunkOverhead
	if limit := e.queueLimit(); s.queued+cost > limit &&
		(s.queued+cost > limit*readingSlack || time.Since(s.lastCredit) >= readingGrace) {
		return false
	}
	s.pending = append(s.pending, chunk{body: body, cost: int32(cost)})
	s.queued += cost
	return true
}

// enqueue queues published content for s behind what is already waiting.
// A client that is so far behind that the content would take its queue
// past the bound never gets a gap in its stream: its stream is ended
// instead (see overflow), and enqueue reports false.
func (e *engine) enqueue(s *session, body []byte, channel string) bool {
	if e.queue(s, body) {
		return true
	}
	e.overflow(s, channel)
	return false
}

// overflow ends the stream of a client that fell too far behind: what is
// queued is dropped, except the rest of a message already partly sent (so
// the client gets whole messages), and the response ends there, cleanly:
// the client sees its stream end and reconnects (and can recover what it
// missed, e.g. with Last-Event-ID), where a dropped message would be a
// gap it never learns of. The end needs no credits (it has no body) unless
// the rest of a message is still to go; a client that reads nothing at
// all then has its connection closed by maintain, after endWait.
func (e *engine) overflow(s *session, channel string) {
	n := e.backlog.ended.Add(1)
	e.log.Warn().Str("id", s.id).Str("channel", channel).Int64("queued", s.queued).Int64("limit", e.queueLimit()).
		Uint64("total", n).Msg("stream client too slow: queue full, ending its stream")
	keep := 0
	if len(s.pending) > 0 && s.pending[0].partial {
		keep = 1
	}
	clear(s.pending[keep:])
	s.pending = s.pending[:keep]
	s.queued = 0
	if keep == 1 {
		s.queued = int64(s.pending[0].cost)
	}
	s.done = true
	s.pending = append(s.pending, chunk{final: true})
	e.flush(s)
}

// flush sends pending body within credits. Queued chunks go out joined,
// as many as the credits take, in one packet: a client behind by many
// small messages catches up with one packet (and one credit return) per
// credit window rather than one per message.
func (e *engine) flush(s *session) {
	for len(s.pending) > 0 {
		if len(s.pending[0].body) > 0 && s.credits <= 0 {
			return
		}
		body, final := e.takeBody(s)
		p := s.packet(e.id)
		p.Body, p.More = body, !final
		if p.Body == nil {
			p.Body = []byte{}
		}
		e.emit(s, &p)
		s.credits -= int64(len(body))
		s.lastData = time.Now()
		if final {
			e.end(s)
			return
		}
	}
}

// takeBody takes from the head of s.pending as much body as s's credits
// allow, up to and including a final chunk. One chunk's body is returned
// as it is; several are joined in the engine's scratch buffer, which the
// packet's encoding copies before the next flush.
func (e *engine) takeBody(s *session) (body []byte, final bool) {
	joined := false
	for len(s.pending) > 0 {
		c := &s.pending[0]
		room := s.credits - int64(len(body))
		if room <= 0 && len(c.body) > 0 {
			break
		}
		n := min(int64(len(c.body)), room)
		part := c.body[:n]
		if body == nil && !joined {
			body = part
		} else {
			if !joined {
				e.scratch = append(e.scratch[:0], body...)
				joined = true
			}
			e.scratch = append(e.scratch, part...)
			body = e.scratch
		}
		if n < int64(len(c.body)) {
			c.body, c.partial = c.body[n:], true
			break
		}
		final = c.final
		s.queued -= int64(c.cost)
		s.pending[0] = chunk{}
		s.pending = s.pending[1:]
		if final {
			break
		}
	}
	return body, final
}

// reportBacklog logs, at most every 10 s, how many stream holds have been
// ended for falling behind, when that grew (each one was also logged as it
// happened).
func (e *engine) reportBacklog(now time.Time) {
	n := e.backlog.ended.Load()
	if n == e.backlog.logged || now.Sub(e.backlog.lastAt) < 10*time.Second {
		return
	}
	e.log.Info().Uint64("total", n).Uint64("new", n-e.backlog.logged).Msg("stream clients ended for falling behind")
	e.backlog.logged, e.backlog.lastAt = n, now
}
