package handler

import (
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/proto/grip"
	"github.com/pushpin-go/pushpin/proto/handoff"
	"github.com/pushpin-go/pushpin/proto/publish"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// maxKeepAliveIDs bounds a batched (list-form id) keep-alive packet.
const maxKeepAliveIDs = 128

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

	keepAliveEvery, expiry time.Duration

	ev       chan func()
	sessions map[sessionKey]*session
	wheel    wheel                   // every session of sessions, by when maintain must next look at it
	batches  map[string]*senderBatch // publish scratch: shared-packet ids per connection manager
	inBatch  []*senderBatch          // the batches the current publish added to
	hub      map[string]map[*session]struct{}

	maxQueue int64  // stream_max_queue_size; 0: DefaultStreamQueueSize
	scratch  []byte // flush: queued chunks joined into one packet body
	backlog  backlogStats
}

func newEngine(id string, log zerolog.Logger, send func([]byte), subs chan<- subChange, maxChans int) *engine {
	return &engine{
		id: id, log: log, send: send, subs: subs, maxChans: maxChans,
		keepAliveEvery: 45 * time.Second, expiry: 60 * time.Second,
		wheel:   newWheel(time.Now()),
		batches: map[string]*senderBatch{},
		ev:      make(chan func(), 4096), sessions: map[sessionKey]*session{}, hub: map[string]map[*session]struct{}{},
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
			e.reportBacklog(now)
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
// prepared once by the parser. Stream holds behind a connection manager
// that accepts list-form ids on data packets (ext.multi-data: ours) get
// the content in one packet per connection manager, listing every session
// with its seq, so the body is encoded once per publish rather than once
// per subscriber; the others (condure, a session short of credits or with
// queued data) get their own packet as before.
func (e *engine) publish(it *publish.Item) {
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
		c := s.packet(e.id)
		c.Type = zhttp.Cancel
		e.emit(s, &c)
		e.end(s)
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

// counts returns (sessions, channels), for tests and logs.
func (e *engine) counts() (int, int) { return len(e.sessions), len(e.hub) }
