package handler

// WebSocket sessions. The proxy keeps each client's WebSocket; the handler
// keeps, per session, only what a publish, a control message or an expiry
// needs (zhttp.md §11 "ws-control"). The state is small and explicit so it
// can later be written out and read back across a restart (issue 9 point
// 5): no timers or sockets in it except the rare send-delayed timer, and
// the channels it holds are named by the shared channel index entries.

import (
	"time"

	"github.com/pushpin-go/pushpin/proto/grip"
	"github.com/pushpin-go/pushpin/proto/wscontrol"
)

// wsKind is a WebSocket message type, as the `content-type` of a send item.
type wsKind uint8

const (
	wsText wsKind = iota + 1
	wsBinary
	wsPing
	wsPong
)

var wsKindNames = [...]string{"", "text", "binary", "ping", "pong"}

func (k wsKind) String() string { return wsKindNames[k] }

func wsKindOf(t grip.MessageType) wsKind {
	switch t {
	case grip.MessageText:
		return wsText
	case grip.MessageBinary:
		return wsBinary
	case grip.MessagePing:
		return wsPing
	case grip.MessagePong:
		return wsPong
	}
	return 0
}

// wsMsg is a message the handler sends to a client on its own: the
// keep-alive of a `keep-alive` control message, a pending send-delayed.
type wsMsg struct {
	kind wsKind
	body []byte
}

// wsDelayed is a pending send-delayed message and the timer that sends it.
type wsDelayed struct {
	wsMsg
	timer *time.Timer
}

// wsChan is one channel's WebSocket subscribers. Sessions point at it, so
// a channel's name is stored once however many sessions hold it.
type wsChan struct {
	name string
	subs map[*wsSession]struct{}
}

// wsSub is one channel a session holds.
type wsSub struct {
	ch       *wsChan
	filters  []string // the subscribe control message's filters (grip.md §8)
	implicit bool     // from the route's sub= (or the OPEN's Grip-Channel): never unsubscribed
}

// metaKV is one set-meta pair. A slice rather than a map: most sessions
// have none, a few have one or two.
type metaKV struct{ name, value string }

// wsSession is one WebSocket session the proxy told us about (`here`).
// Every field is owned by the engine goroutine. Times are engine ring
// seconds (wsRing.sec), 4 bytes each.
type wsSession struct {
	cid           string
	route, prefix string // interned: shared by every session of a route
	sid           string // `session` control message
	subs          []wsSub
	meta          []metaKV
	ka            *wsMsg     // `keep-alive` control message: the reply to need-keep-alive
	delayed       *wsDelayed // pending send-delayed

	expireAt int32 // dropped at this second unless refreshed (here, keep-alive)
	ackDue   int32 // a request we sent has had no ack by this second (0: none waiting)
	ringAt   int32 // second of the ring entry that is this session's live one (0: none)
	nextReq  uint32
	ackWant  uint32 // lowest req-id not acked yet; == nextReq when none waits
	multi    bool   // the proxy takes `cids` on send items for it (ours)
	ended    bool
}

// wsAckWait is how long a request we send (req-id) may go unacked; then the
// session is cancelled, as Pushpin does (WSCONTROL_REQUEST_TIMEOUT).
const wsAckWait = 8

// wsRing schedules a look at WebSocket sessions for their expiry and ack
// deadlines, one bucket a second. Entries are dropped lazily: moving a
// deadline later adds nothing (the earlier look finds it later and puts
// the session back for it), moving it earlier adds an entry and makes the
// old one stale (ringAt no longer names its second). A keep-alive every
// 45 s against a 60 s ttl therefore costs one look a minute per session,
// and no timer per session.
type wsRing struct {
	epoch time.Time
	cur   int32 // the last second processed
	slots [wheelSlots][]*wsSession
}

// sec returns the ring second of t (seconds since the engine started).
func (r *wsRing) sec(t time.Time) int32 { return int32(t.Sub(r.epoch) / time.Second) }

// put schedules a look at s at second at, or sooner: a deadline past the
// ring's span is looked at again at the span's end.
func (r *wsRing) put(s *wsSession, at int32) {
	at = min(max(at, r.cur+1), r.cur+wheelSlots-1)
	if s.ringAt > r.cur && s.ringAt <= at {
		return // an earlier look is already due
	}
	s.ringAt = at
	i := at & (wheelSlots - 1)
	r.slots[i] = append(r.slots[i], s)
}

// advance calls fn for each session whose look falls in the seconds up to
// now. While fn runs, cur is that second, so fn's put lands later.
func (r *wsRing) advance(now int32, fn func(s *wsSession, sec int32)) {
	for r.cur < now {
		r.cur++
		t := r.cur
		i := t & (wheelSlots - 1)
		list := r.slots[i]
		r.slots[i] = nil
		for _, s := range list {
			if s.ringAt == t {
				s.ringAt = 0
				fn(s, t)
			}
		}
	}
}

// wsLook is the ring's look at s at second t: drop it if its ttl ran out,
// cancel it if a request went unacked, else schedule the next look.
func (e *engine) wsLook(s *wsSession, t int32) {
	if s.ended {
		return
	}
	if s.ackDue != 0 && s.ackDue <= t {
		e.log.Debug().Str("cid", s.cid).Msg("ws session control error: request not acked, cancelling")
		e.wsWrite([]wscontrol.Item{wscontrol.NewItem(s.cid, wscontrol.Cancel)})
		e.wsEnd(s)
		return
	}
	if s.expireAt <= t {
		e.log.Debug().Str("cid", s.cid).Msg("ws session timed out")
		e.wsEnd(s)
		return
	}
	e.wsSchedule(s)
}

func (e *engine) wsSchedule(s *wsSession) {
	at := s.expireAt
	if s.ackDue != 0 && s.ackDue < at {
		at = s.ackDue
	}
	e.wsRing.put(s, at)
}

// wsRefresh moves s's expiry ttl seconds ahead (the proxy's `ttl`, 60 by
// default). One second is added so a tick early in its second never drops
// a session before its ttl.
func (e *engine) wsRefresh(s *wsSession, ttl int64) {
	if ttl <= 0 {
		ttl = wscontrol.SessionTTL
	}
	s.expireAt = e.wsRing.sec(time.Now()) + int32(min(ttl, 1<<20)) + 1
	e.wsSchedule(s)
}

// intern returns a shared copy of s, so route names and channel prefixes
// are stored once, not once per session. Bounded by the routes in use.
func (e *engine) intern(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := e.interned[s]; ok {
		return v
	}
	if len(e.interned) >= 10000 {
		return s // a proxy sending endless names must not grow this without bound
	}
	e.interned[s] = s
	return s
}

// wsHere creates or refreshes the session of a `here` item.
func (e *engine) wsHere(it *wscontrol.Item) {
	s := e.ws[it.CID]
	if s == nil {
		s = &wsSession{cid: it.CID}
		e.ws[s.cid] = s
		e.log.Debug().Str("cid", s.cid).Msg("added ws session")
	}
	s.route, s.prefix, s.multi = e.intern(it.Route), e.intern(it.ChannelPrefix), it.MultiSend
	e.wsRefresh(s, it.TTL)
}

// wsEnd forgets s and its subscriptions.
func (e *engine) wsEnd(s *wsSession) {
	if s.ended {
		return
	}
	s.ended = true
	if s.delayed != nil {
		s.delayed.timer.Stop()
		s.delayed = nil
	}
	for _, sub := range s.subs {
		e.wsUnlink(sub.ch, s)
	}
	s.subs = nil
	if e.ws[s.cid] == s {
		delete(e.ws, s.cid)
	}
	e.log.Debug().Str("cid", s.cid).Msg("removed ws session")
}

// wsSubscribe adds ch (already prefixed) to s's channels. A channel it
// already holds only gets the new filters.
func (e *engine) wsSubscribe(s *wsSession, name string, filters []string, implicit bool) {
	for i := range s.subs {
		if s.subs[i].ch.name == name {
			if implicit {
				s.subs[i].implicit = true
			} else {
				s.subs[i].filters = filters
			}
			return
		}
	}
	if !implicit && e.maxChans > 0 && len(s.subs) >= e.maxChans {
		e.log.Warn().Str("cid", s.cid).Str("channel", name).Int("connection_subscription_max", e.maxChans).
			Msg("ws session: too many subscriptions, subscribe ignored")
		return
	}
	c := e.wsHub[name]
	if c == nil {
		c = &wsChan{name: name, subs: map[*wsSession]struct{}{}}
		e.wsHub[name] = c
		if e.hub[name] == nil {
			e.channelWanted(name, true)
		}
	}
	c.subs[s] = struct{}{}
	s.subs = append(s.subs, wsSub{ch: c, filters: filters, implicit: implicit})
	e.log.Debug().Str("cid", s.cid).Str("channel", name).Msg("ws session subscribed")
}

// wsUnsubscribe drops ch (already prefixed) from s, unless it is implicit.
func (e *engine) wsUnsubscribe(s *wsSession, name string) {
	for i := range s.subs {
		if s.subs[i].ch.name != name {
			continue
		}
		if s.subs[i].implicit {
			return
		}
		e.wsUnlink(s.subs[i].ch, s)
		s.subs = append(s.subs[:i], s.subs[i+1:]...)
		return
	}
}

func (e *engine) wsUnlink(c *wsChan, s *wsSession) {
	delete(c.subs, s)
	if len(c.subs) == 0 && e.wsHub[c.name] == c {
		delete(e.wsHub, c.name)
		if e.hub[c.name] == nil {
			e.channelWanted(c.name, false)
		}
	}
}

// wsSubscribed reports whether s holds channel name (require-sub).
func (s *wsSession) subscribed(name string) bool {
	for i := range s.subs {
		if s.subs[i].ch.name == name {
			return true
		}
	}
	return false
}

func (s *wsSession) metaValue(name string) string {
	for _, m := range s.meta {
		if m.name == name {
			return m.value
		}
	}
	return ""
}

func (s *wsSession) setMeta(name, value string, has bool) {
	for i := range s.meta {
		if s.meta[i].name == name {
			if has {
				s.meta[i].value = value
			} else {
				s.meta = append(s.meta[:i], s.meta[i+1:]...)
			}
			return
		}
	}
	if has {
		s.meta = append(s.meta, metaKV{name, value})
	}
}

// wsCounts returns (WebSocket sessions, channels they hold), for tests and
// logs.
func (e *engine) wsCounts() (int, int) { return len(e.ws), len(e.wsHub) }
