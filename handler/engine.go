package handler

import (
	"math/rand/v2"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/proto/grip"
	"github.com/pushpin-go/pushpin/proto/handoff"
	"github.com/pushpin-go/pushpin/proto/publish"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// maxKeepAliveIDs bounds a batched (list-form id) keep-alive packet.
const maxKeepAliveIDs = 128

// subChange asks the SUB input to (un)subscribe a channel.
type subChange struct {
	channel string
	add     bool
}

// engine owns every held session and the channel index. It runs in one
// goroutine (run); other goroutines hand it work as closures through ev, so
// no session state is ever shared or locked. Packets are encoded here, with
// their seq, and queued to the PUB sender in order.
type engine struct {
	id       string
	log      zerolog.Logger
	send     func(frame []byte) // queue one PUB frame to the connection manager
	subs     chan<- subChange   // nil when there is no SUB input
	maxChans int

	keepAlive, expiry time.Duration

	ev       chan func()
	sessions map[string]*session
	hub      map[string]map[*session]struct{}
}

func newEngine(id string, log zerolog.Logger, send func([]byte), subs chan<- subChange, maxChans int) *engine {
	return &engine{
		id: id, log: log, send: send, subs: subs, maxChans: maxChans,
		keepAlive: 45 * time.Second, expiry: 60 * time.Second,
		ev: make(chan func(), 4096), sessions: map[string]*session{}, hub: map[string]map[*session]struct{}{},
	}
}

// post runs fn on the engine goroutine.
func (e *engine) post(fn func()) { e.ev <- fn }

// run processes events until done is closed.
func (e *engine) run(done <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case fn := <-e.ev:
			fn()
		case now := <-tick.C:
			e.maintain(now)
		}
	}
}

func (e *engine) emit(s *session, p *zhttp.Packet) {
	e.send(p.AppendPub(nil, s.sender))
}

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
		s.hold, s.orig, s.ka = in.Hold, in.Response, in.KeepAlive
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
			e.scheduleKeepAlive(s)
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

// flush sends pending body within credits.
func (e *engine) flush(s *session) {
	for len(s.pending) > 0 {
		c := &s.pending[0]
		if len(c.body) > 0 && s.credits <= 0 {
			return
		}
		n := min(int64(len(c.body)), s.credits)
		part, rest := c.body[:n], c.body[n:]
		final := c.final && len(rest) == 0
		p := s.packet(e.id)
		p.Body, p.More = part, !final
		if p.Body == nil {
			p.Body = []byte{}
		}
		e.emit(s, &p)
		s.credits -= n
		s.lastData = time.Now()
		if len(rest) > 0 {
			c.body = rest
			continue
		}
		s.pending = s.pending[1:]
		if final {
			e.end(s)
			return
		}
	}
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
	if e.sessions[s.key] == s {
		delete(e.sessions, s.key)
	}
	for _, ch := range s.channels {
		e.unsubscribe(ch, s)
	}
}

func (e *engine) subscribe(ch string, s *session) {
	set := e.hub[ch]
	if set == nil {
		set = map[*session]struct{}{}
		e.hub[ch] = set
		if e.subs != nil {
			e.subs <- subChange{ch, true}
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
		if e.subs != nil {
			e.subs <- subChange{ch, false}
		}
	}
}

// publish delivers one item to the channel's holds. The item's payload was
// prepared once by the parser; per subscriber only the packet header
// (id, seq) differs.
func (e *engine) publish(it *publish.Item) {
	for s := range e.hub[it.Channel] {
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
				if len(s.pending) >= maxQueued {
					e.log.Warn().Str("id", s.id).Str("channel", it.Channel).Msg("stream queue full, dropping publish")
					continue
				}
				s.pending = append(s.pending, chunk{body: hs.Content})
				e.flush(s)
				e.scheduleKeepAlive(s)
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
}

// scheduleKeepAlive (re)arms a stream hold's Grip-Keep-Alive timer. Idle
// mode waits for a quiet period after the last data; interval mode fires at
// a fixed period. Timers fire up to 1 s early, as Pushpin's do.
func (e *engine) scheduleKeepAlive(s *session) {
	if s.ka == nil || len(s.ka.Data) == 0 || s.done {
		return
	}
	if s.kaTimer != nil && s.ka.Mode == grip.KeepAliveInterval {
		return
	}
	if s.kaTimer != nil {
		s.kaTimer.Stop()
	}
	d := time.Duration(s.ka.Timeout)*time.Second - time.Duration(rand.IntN(1000))*time.Millisecond
	key := s.key
	s.kaTimer = time.AfterFunc(d, func() {
		e.post(func() {
			if e.sessions[key] != s || s.done {
				return
			}
			s.kaTimer = nil
			if len(s.pending) < maxQueued {
				s.pending = append(s.pending, chunk{body: s.ka.Data})
				e.flush(s)
			}
			e.scheduleKeepAlive(s)
		})
	})
}

// onPacket handles a packet from the connection manager.
func (e *engine) onPacket(p *zhttp.Packet) {
	if len(p.IDs) > 0 {
		for _, x := range p.IDs {
			q := *p
			q.IDs, q.ID, q.Seq, q.HasSeq = nil, x.ID, x.Seq, true
			e.onPacket(&q)
		}
		return
	}
	s := e.sessions[p.From+"\x00"+p.ID]
	if s == nil {
		if p.Type != zhttp.Cancel && p.Type != zhttp.Error {
			e.log.Debug().Str("from", p.From).Str("id", p.ID).Str("type", string(p.Type)).Msg("packet for unknown session")
		}
		return
	}
	switch p.Type {
	case zhttp.Cancel, zhttp.Error:
		e.log.Debug().Str("id", s.id).Str("type", string(p.Type)).Msg("client session ended")
		e.end(s)
		return
	}
	if p.HasSeq && p.Seq != s.inSeq {
		e.log.Warn().Str("id", s.id).Int64("seq", p.Seq).Int64("want", s.inSeq).Msg("out of sequence packet, cancelling")
		c := s.packet(e.id)
		c.Type = zhttp.Cancel
		e.emit(s, &c)
		e.end(s)
		return
	}
	s.inSeq++
	s.lastIn = time.Now()
	if p.Credits > 0 {
		s.credits += p.Credits
		e.flush(s)
	}
}

// maintain sends zhttp keep-alives (batched per connection manager when it
// accepts list-form ids) and expires sessions the client side forgot.
func (e *engine) maintain(now time.Time) {
	batches := map[string][]*session{}
	for _, s := range e.sessions {
		if now.Sub(s.lastIn) > e.expiry {
			e.log.Debug().Str("id", s.id).Msg("session expired")
			e.end(s)
			continue
		}
		if now.Sub(s.lastOut) < e.keepAlive-time.Second {
			continue
		}
		if !s.multi {
			p := s.packet(e.id)
			p.Type = zhttp.KeepAlive
			e.emit(s, &p)
			continue
		}
		batches[s.sender] = append(batches[s.sender], s)
	}
	for sender, list := range batches {
		for len(list) > 0 {
			n := min(len(list), maxKeepAliveIDs)
			p := zhttp.Packet{From: e.id, Type: zhttp.KeepAlive, Ext: zhttp.Ext{Multi: true}}
			for _, s := range list[:n] {
				p.IDs = append(p.IDs, zhttp.IDSeq{ID: s.id, Seq: s.outSeq})
				s.outSeq++
				s.lastOut = now
			}
			e.send(p.AppendPub(nil, sender))
			list = list[n:]
		}
	}
}

// counts returns (sessions, channels), for tests and logs.
func (e *engine) counts() (int, int) { return len(e.sessions), len(e.hub) }
