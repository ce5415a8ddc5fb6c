package handler

// Intake: sessions taken over from the proxy, packets from the connection
// manager about them, their responses and their end.

import (
	"time"

	"github.com/pushpin-go/pushpin/proto/grip"
	"github.com/pushpin-go/pushpin/proto/handoff"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// accept takes over the sessions of a handoff.
func (e *engine) accept(a *handoff.Accept) {
	in, err := grip.ParseResponse(int(a.Response.Code), a.Response.Reason, a.Response.Headers, a.Response.Body,
		grip.Options{ChannelPrefix: a.ChannelPrefix, MaxChannels: e.maxChans})
	now := time.Now()
	for _, hs := range a.Sessions {
		s := newSession(hs, now)
		if old := e.sessions[s.key]; old != nil {
			e.end(old)
		}
		e.sessions[s.key] = s
		e.wheel.add(s, e.nextDue(s))
		// Resume as the session's server: a keep-alive from our id makes the
		// connection manager send everything later to us.
		p := s.packet(e.id)
		p.Type = zhttp.KeepAlive
		p.Ext.Multi = s.multi
		e.emit(s, &p)
		if err != nil || in.Hold == grip.HoldNone {
			e.log.Warn().Err(err).Str("id", s.id).Msg("accepted session has no valid hold")
			e.fail(s)
			continue
		}
		s.hold = in.Hold
		e.setKeepAlive(s, in.KeepAlive)
		if in.Hold == grip.HoldResponse {
			s.orig = in.Response // the timeout answer and the base of http-response publishes
		}
		for _, c := range in.Channels {
			s.channels = append(s.channels, c.Name)
		}
		for _, c := range a.Channels {
			s.channels = append(s.channels, a.ChannelPrefix+c)
		}
		for _, ch := range s.channels {
			e.subscribe(ch, s)
		}
		e.log.Debug().Str("id", s.id).Str("hold", in.Hold.String()).Strs("channels", s.channels).Msg("session accepted")
		switch in.Hold {
		case grip.HoldStream:
			if !a.ResponseSent {
				e.startResponse(s, in.Response, false)
			}
		case grip.HoldResponse:
			key := s.key
			s.timer = time.AfterFunc(time.Duration(in.Timeout)*time.Second, func() {
				e.post(func() {
					if cur := e.sessions[key]; cur == s && !s.done {
						e.startResponse(s, s.orig, true)
					}
				})
			})
		}
	}
}

// startResponse sends the status line, headers and as much body as the
// client's credits allow; the rest waits in pending.
func (e *engine) startResponse(s *session, r grip.Response, final bool) {
	p := s.packet(e.id)
	p.HasCode, p.Code, p.Reason = true, int64(r.Code), r.Reason
	p.Headers, p.HasHeaders = clientHeaders(r.Headers), true
	n := min(int64(len(r.Body)), max(s.credits, 0))
	p.Body = r.Body[:n]
	s.credits -= n
	rest := r.Body[n:]
	p.More = !final || len(rest) > 0
	e.emit(s, &p)
	s.lastData = time.Now()
	if len(rest) > 0 {
		s.pending = append(s.pending, chunk{body: rest, final: final})
	}
	if final {
		s.done = true
		if len(rest) == 0 {
			e.end(s)
		}
	}
}

// cancel ends s on both sides: the connection manager closes the client's
// connection.
func (e *engine) cancel(s *session) {
	c := s.packet(e.id)
	c.Type = zhttp.Cancel
	e.emit(s, &c)
	e.end(s)
}

// fail answers a session that cannot be held with Pushpin's 502.
func (e *engine) fail(s *session) {
	s.hold = grip.HoldNone
	e.startResponse(s, grip.Response{Code: 502, Reason: "Bad Gateway",
		Headers: zhttp.Headers{{Name: "Content-Type", Value: "text/plain"}},
		Body:    []byte("Error while proxying to origin.\n")}, true)
}

// end forgets a session and its subscriptions.
func (e *engine) end(s *session) {
	s.done = true
	s.stopTimers()
	e.wheel.remove(s)
	if e.sessions[s.key] == s {
		delete(e.sessions, s.key)
	}
	for _, ch := range s.channels {
		e.unsubscribe(ch, s)
	}
}

// onPacket handles a packet from the connection manager. A list-form
// packet (credits a fan-out earned come back so, 128 sessions or more a
// packet) is applied id by id from the shared packet, without a copy of it
// per session.
func (e *engine) onPacket(p *zhttp.Packet) {
	if len(p.IDs) == 0 {
		e.onSessionPacket(p, p.ID, p.Seq, p.HasSeq)
		return
	}
	for _, x := range p.IDs {
		e.onSessionPacket(p, x.ID, x.Seq, true)
	}
}

func (e *engine) onSessionPacket(p *zhttp.Packet, id string, seq int64, hasSeq bool) {
	s := e.sessions[sessionKey{p.From, id}]
	if s == nil {
		if p.Type != zhttp.Cancel && p.Type != zhttp.Error {
			e.log.Debug().Str("from", p.From).Str("id", id).Str("type", string(p.Type)).Msg("packet for unknown session")
		}
		return
	}
	switch p.Type {
	case zhttp.Cancel, zhttp.Error:
		e.log.Debug().Str("id", s.id).Str("type", string(p.Type)).Msg("client session ended")
		e.end(s)
		return
	}
	if hasSeq && seq != s.inSeq {
		e.log.Warn().Str("id", s.id).Int64("seq", seq).Int64("want", s.inSeq).Msg("out of sequence packet, cancelling")
		e.cancel(s)
		return
	}
	s.inSeq++
	s.lastIn = time.Now()
	if p.Credits > 0 {
		s.lastCredit = s.lastIn
		s.credits += p.Credits
		e.flush(s)
	}
}
