package handler

// Keep-alive and expiry: the engine's once-a-second maintenance over the
// sessions whose wheel bucket has come.

import (
	"time"

	"github.com/pushpin-go/pushpin/proto/grip"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// maxKeepAliveIDs bounds a batched (list-form id) keep-alive packet.
const maxKeepAliveIDs = 128

// gripKeepAlive sends Grip-Keep-Alive data to a stream hold that is due,
// from the once-a-second maintenance rather than a timer per session (no
// timer churn per published message). Like Pushpin's timers it may fire
// up to 1 s early.
func (e *engine) gripKeepAlive(s *session, now time.Time) {
	due, ok := gripDue(s)
	if !ok || now.Before(due) {
		return
	}
	if e.queue(s, s.ka.Data) { // a client past its bound gets no keep-alive
		e.flush(s)
	}
	s.lastKA, s.lastData = now, now
}

// gripDue returns when s's Grip-Keep-Alive falls due, if it has one: idle
// mode waits for a quiet period after the last data, interval mode fires
// at a fixed period.
func gripDue(s *session) (time.Time, bool) {
	if s.ka == nil || len(s.ka.Data) == 0 || s.done || s.hold != grip.HoldStream {
		return time.Time{}, false
	}
	since := s.lastData
	if s.ka.Mode == grip.KeepAliveInterval {
		since = s.lastKA
	}
	return since.Add(time.Duration(s.ka.Timeout)*time.Second - time.Second), true
}

// setKeepAlive changes s's Grip-Keep-Alive. The wheel only learns of due
// times moving later by looking again (lastIn, lastOut and lastData move on
// with every packet), so a keep-alive that may fall due sooner than s's
// bucket must re-bucket it here.
func (e *engine) setKeepAlive(s *session, ka *grip.KeepAlive) {
	s.ka = ka
	if s.wheelAt > 0 {
		e.wheel.add(s, e.nextDue(s))
	}
}

// nextDue is the earliest time maintain could have work for s: expiry,
// the zhttp keep-alive or the Grip-Keep-Alive.
func (e *engine) nextDue(s *session) time.Time {
	due := s.lastIn.Add(e.expiry)
	if t := s.lastOut.Add(e.keepAliveEvery - time.Second); t.Before(due) {
		due = t
	}
	if t, ok := gripDue(s); ok && t.Before(due) {
		due = t
	}
	return due
}

// maintain sends zhttp keep-alives (batched per connection manager when it
// accepts list-form ids) and Grip-Keep-Alive data, and expires sessions
// the client side forgot. It looks only at the sessions whose wheel bucket
// has come, so its cost follows what is due rather than how many sessions
// are held; each is checked against its real timestamps (which may have
// moved on since it was bucketed) and put back for its next due time.
func (e *engine) maintain(now time.Time) {
	var batches map[string][]*session
	for _, list := range e.wheel.take(now) {
		for _, s := range list {
			if s.wheelAt != wheelTaken {
				continue // ended during this tick
			}
			if now.Sub(s.lastIn) > e.expiry {
				e.log.Debug().Str("id", s.id).Msg("session expired")
				e.end(s)
				continue
			}
			if s.done && len(s.pending) > 0 && now.Sub(s.lastCredit) >= endWait {
				// Its response was ended (it fell too far behind, or a
				// close) but the end cannot reach it: it reads nothing.
				e.log.Info().Str("id", s.id).Msg("stream client reads nothing: closing its connection")
				e.cancel(s)
				continue
			}
			e.gripKeepAlive(s, now)
			if s.wheelAt != wheelTaken {
				continue // the keep-alive's flush ended it
			}
			if now.Sub(s.lastOut) < e.keepAliveEvery-time.Second {
				e.wheel.add(s, e.nextDue(s))
				continue
			}
			if !s.multi {
				p := s.packet(e.id)
				p.Type = zhttp.KeepAlive
				e.emit(s, &p)
				e.wheel.add(s, e.nextDue(s))
				continue
			}
			if batches == nil {
				batches = map[string][]*session{}
			}
			batches[s.sender] = append(batches[s.sender], s)
		}
	}
	e.wheel.release()
	for sender, list := range batches {
		for len(list) > 0 {
			n := min(len(list), maxKeepAliveIDs)
			p := zhttp.Packet{From: e.id, Type: zhttp.KeepAlive, Ext: zhttp.Ext{Multi: true}}
			for _, s := range list[:n] {
				p.IDs = append(p.IDs, zhttp.IDSeq{ID: s.id, Seq: s.outSeq})
				s.outSeq++
				s.lastOut = now
				e.wheel.add(s, e.nextDue(s))
			}
			e.send(p.AppendPub(nil, sender))
			list = list[n:]
		}
	}
}
