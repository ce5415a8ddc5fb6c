package proxy

import (
	"bytes"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/configs/routing"
	"github.com/pushpin-go/pushpin/proto/wscontrol"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

const (
	// maxWSQueue bounds, in bytes, the handler's messages a WebSocket
	// session holds while its client has no credits (the handler's
	// stream_max_queue_size default). Past it the client is closed with
	// 1008, never left with a gap.
	maxWSQueue = 1 << 20
	// wsReadingSlack is how many times maxWSQueue a client may fall
	// behind while it still takes data (its credits came back within
	// wsReadingGrace): then the writes to it, not its reading, are what is
	// late (a publisher's burst), and closing it would cut off a client
	// that keeps up. One whose credits stopped is closed at maxWSQueue.
	// The handler's stream holds use the same rule.
	wsReadingSlack = 32
	wsReadingGrace = time.Second
	// wsMsgOverhead is what a queued message costs beyond its bytes, so
	// that tiny messages cannot queue without limit either.
	wsMsgOverhead = 64
	// wsCloseWait is how long a backend that was sent a close because
	// the client vanished has to answer it before it is canceled.
	wsCloseWait = 5 * time.Second
)

// Close codes the proxy sends itself.
const (
	closeGoingAway   = 1001
	closePolicy      = 1008
	textCannotKeepUp = "client cannot keep up"
)

type wsPhase uint8

const (
	wsConnecting wsPhase = iota // waiting for the backend's handshake
	wsOpen                      // 101 sent: frames flow
	wsDone
)

// wsSession is one client WebSocket (a zws session from the connection
// manager, zhttp.md §7) and its backend. Like the HTTP session it has no
// goroutine: whoever received an event handles it in place under mu.
//
// Its state is kept small and explicit, grouped by what a restart would
// have to restore: the client's zws stream (from, id, seqs, credits, user
// data), the route and target, the cid the handler knows it by, the GRIP
// mode (message prefix, detached, the handler's keep-alive), and the
// queues in each direction. Channels and meta are the handler's.
type wsSession struct {
	px     *Proxy
	logger *zerolog.Logger
	key    string // clientKey(from, id)
	cid    string // connection id, a UUID: the handler's name for it
	client *stream

	// Read by the ticker without mu.
	zcur    atomic.Pointer[stream] // the backend's zws stream (passthrough)
	ctlOn   atomic.Bool            // `here` sent: keep-alive items due
	ctlLast atomic.Int64           // last here/keep-alive item (unix ns)
	tickAt  atomic.Int64           // when evTick is wanted (unix ns), 0: never
	starved atomic.Bool            // frames wait for the client's credits
	repump  atomic.Bool            // held back by a pending batch: it pumps the session once written

	mu      sync.Mutex // everything below
	ph      wsPhase
	cleaned bool

	// client side
	first      *zhttp.Packet // the handshake request (uri, headers, peer); dropped once accepted
	uri        string        // the client's URI (the handler's `here`)
	userData   []byte
	multi      bool // the client accepts list-form ids (ext.multi)
	mdata      bool // ... on data packets too (ext.multi-data)
	inSeq      int64
	credits    int64   // content bytes the client takes now
	window     int64   // the most credits it gave at once: pieces are at least half of it
	lastCredit int64   // when the client last gave credits (unix ns): the queue bound
	cCredit    int     // client bytes forwarded, to give back as credits
	cInMid     bool    // a fragmented client message is under way
	cInKind    wsKind  // its kind
	toClient   wsQueue // backend frames and handler messages
	// batch is the last wsBatch that took messages of the session: while
	// it is pending (not written), nothing else goes to the client before
	// them. inBatch is the batch of the event being handled (nil: none),
	// which pumpOut adds shareable messages to.
	batch, inBatch *wsBatch
	lastMsg        uint64 // the last message batched: a later batch takes only newer ones
	held           []wsFrame
	heldBytes      int // handler messages waiting for a backend message to end
	fromClient     wsQueue
	outMid         bool // a message to the client is partly written
	closing        bool // our close to the client is queued: nothing is added
	cInClosed      bool // the client sent its close
	cOutClosed     bool // we sent ours
	cGone          bool // the client vanished (cancel): the backend is closing
	closeBy        int64

	// route and target
	route      *routing.Route
	target     int
	tried      []string
	host, rest string
	https      bool
	trusted    bool
	outHeaders zhttp.Headers

	// backend side
	be       wsBackend
	bkCredit int  // backend bytes to give back
	bkMid    bool // a backend message is under way (handler messages wait)
	bkDrop   bool // ... and its rest is dropped (GRIP control or unprefixed)

	// GRIP and ws-control
	grip     bool   // the backend enabled the grip extension
	prefix   string // message prefix (default "m:")
	ctl      bool   // the handler knows the session (`here` sent)
	detached bool   // the backend side was dropped; client messages discarded
	nextReq  int64
	// The handler's keep-alive (keep-alive-setup): need-keep-alive is
	// sent at kaDue; interval mode re-arms it, idle mode waits for the
	// next message to the client.
	kaTimeout  int64 // ns, 0: none
	kaInterval bool
	kaDue      int64
}

func newWSSession(px *Proxy, p *zhttp.Packet, now int64) *wsSession {
	// The id and sender are cloned: the packet's strings share one arena
	// with its headers, which an open session must not keep alive.
	id, from := strings.Clone(p.ID), strings.Clone(p.From)
	return &wsSession{px: px, key: clientKey(from, id), cid: newUUID(), client: newStream(id, from, now), first: p}
}

func (s *wsSession) lg() *zerolog.Logger {
	if s.logger == nil {
		c := s.px.log.With().Str("rid", s.client.id).Str("cid", s.cid)
		if s.route != nil {
			c = c.Str("route", s.route.ID)
		}
		l := c.Logger()
		s.logger = &l
	}
	return s.logger
}

func (s *wsSession) debug() *zerolog.Event {
	if s.px.log.GetLevel() > zerolog.DebugLevel {
		return nil
	}
	return s.lg().Debug()
}

// start registers the session and handles its handshake request; false
// when the client id is taken.
func (s *wsSession) start() bool {
	s.mu.Lock()
	if !s.px.wsSessions.add(s.key, s) {
		s.mu.Unlock()
		return false
	}
	s.px.wsCids.add(s.cid, s)
	s.begin()
	s.unlock()
	return true
}

// handle applies one event on the caller's goroutine.
func (s *wsSession) handle(ev event) { s.handleIn(ev, nil) }

// handleIn is handle, but with b the messages the event lets go to the
// client are added to b rather than written one by one.
func (s *wsSession) handleIn(ev event, b *wsBatch) {
	s.mu.Lock()
	s.inBatch = b
	if s.ph != wsDone {
		switch ev.kind {
		case evClient:
			s.onClient(ev.p)
		case evZurl:
			if s.be != nil {
				s.be.onZurl(ev.p)
			}
		case evExpire:
			s.expire(ev.client)
		case evTick:
			s.tick(time.Now().UnixNano())
		}
	}
	s.unlock()
}

// with runs fn under the session's lock (ws-control items, commands).
func (s *wsSession) with(fn func()) { s.withIn(nil, fn) }

// withIn is with, and with b as handleIn.
func (s *wsSession) withIn(b *wsBatch, fn func()) {
	s.mu.Lock()
	s.inBatch = b
	if s.ph != wsDone {
		fn()
	}
	s.unlock()
}

// unlock flushes the credits the event freed, forgets the session if it
// ended, and releases mu.
func (s *wsSession) unlock() {
	s.inBatch = nil
	if s.ph != wsDone {
		if s.cCredit > 0 && !s.cInClosed && !s.cGone {
			s.sendClient(zhttp.Packet{Type: zhttp.Credit, Credits: int64(s.cCredit), HasCredits: true}, false)
		}
		s.cCredit = 0
		if s.bkCredit > 0 && s.be != nil {
			s.be.credit(s.bkCredit)
		}
		s.bkCredit = 0
		s.setTick()
		s.starved.Store(!s.toClient.empty()) // pumpOut left it: short of credits
	} else if !s.cleaned {
		s.cleaned = true
		s.client.ka.Store(false)
		s.px.wsSessions.del(s.key, s)
		s.px.wsCids.del(s.cid, s)
		if s.be != nil {
			s.be.abort()
		}
		for _, f := range append(s.toClient.reset(), s.held...) {
			s.ackSend(f.reqID) // never written: the handler need not wait
		}
		s.held = nil
		if s.ctl {
			s.ctlOn.Store(false)
			s.px.wsctl.send(wscontrol.NewItem(s.cid, wscontrol.Gone))
		}
		s.debug().Msg("websocket session ended")
	}
	s.mu.Unlock()
}

// end marks the session over; it is forgotten when the event is done.
func (s *wsSession) end() {
	s.ph = wsDone
	s.client.ka.Store(false)
}

// setTick publishes when the session next wants evTick.
func (s *wsSession) setTick() {
	var at int64
	for _, t := range []int64{s.kaDue, s.closeBy} {
		if t > 0 && (at == 0 || t < at) {
			at = t
		}
	}
	if s.be != nil {
		if t := s.be.due(); t > 0 && (at == 0 || t < at) {
			at = t
		}
	}
	s.tickAt.Store(at)
}

// sendClient sends a packet to the connection manager.
func (s *wsSession) sendClient(p zhttp.Packet, final bool) {
	p.UserData = s.userData
	s.px.cw.write(&outItem{st: s.client, pkt: p, final: final})
}

// begin validates the handshake request, routes it and opens the backend.
func (s *wsSession) begin() {
	p := s.first
	s.userData, s.multi, s.mdata, s.uri = bytes.Clone(p.UserData), p.Ext.Multi, p.Ext.MultiData, strings.Clone(p.URI)
	if p.Type != zhttp.Data || p.Seq != 0 {
		s.sendClient(zhttp.Packet{Type: zhttp.Error, Condition: "bad-request"}, true)
		s.end()
		return
	}
	s.inSeq = 1
	s.credits, s.window = p.Credits, p.Credits
	s.lastCredit = time.Now().UnixNano()
	s.client.multi = s.multi
	s.client.ka.Store(true)
	scheme, host, rest, ok := splitURI(s.uri) // the clone: host and rest stay with the session
	if !ok {
		s.sendClient(zhttp.Packet{Type: zhttp.Error, Condition: "bad-request"}, true)
		s.end()
		return
	}
	s.https, s.host = scheme == "wss", host
	r, ok := s.px.route(p.Headers, host, rest, true, s.https)
	if !ok {
		s.lg().Info().Str("host", host).Msg("no route")
		s.reject(502, "Bad Gateway", nil, []byte(textNoRoute+hostOnly(host)+"\n"))
		return
	}
	s.route = r
	s.rest = rewritePath(rest, r)
	s.trusted = s.px.rw.isTrusted(p.Headers)
	s.logger = nil
	s.tryTarget(0)
}

// wsTargetURI is targetURI for a WebSocket: ws:// or wss://.
func wsTargetURI(t *routing.Target, host, rest string) string {
	if t.SSL {
		return "wss://" + host + rest
	}
	return "ws://" + host + rest
}

// tryTarget opens target i or a later usable one; with none left the
// client gets a 502.
func (s *wsSession) tryTarget(i int) {
	r := s.route
	for ; i < len(r.Targets); i++ {
		t := &r.Targets[i]
		if t.Type != routing.TargetHTTP {
			s.lg().Warn().Str("target", targetName(t)).Msg("target type not supported for WebSockets")
			s.tried = append(s.tried, targetName(t))
			continue
		}
		s.target = i
		if t.OverHTTP && !s.trusted && wohClientEvents(s.first.Headers) {
			s.reject(403, "Forbidden", zhttp.Headers{{Name: "Content-Type", Value: "text/plain"}},
				[]byte("Client not allowed to send WebSocket events directly.\n"))
			return
		}
		host, hdrs, err := s.px.targetRequest(s.first, r, t, s.host, s.https, s.trusted)
		if err != nil {
			s.lg().Error().Err(err).Msg("rewriting request")
			s.reject502(err.Error())
			return
		}
		// Extensions are not passed on (we could not speak them); the
		// grip extension is offered instead (grip.md §10.1).
		hdrs = hdrs.Del("Sec-WebSocket-Extensions")
		if !r.NoGrip {
			hdrs = append(hdrs, zhttp.Header{Name: "Sec-WebSocket-Extensions", Value: "grip"})
		}
		s.outHeaders = hdrs
		if t.OverHTTP {
			s.be = newWOH(s, t, host)
		} else {
			s.be = newWSPass(s, t, wsTargetURI(t, host, s.rest))
		}
		s.be.start()
		return
	}
	s.reject502("Unable to connect to any targets. Tried: " + strings.Join(s.tried, ", "))
}

// reject refuses the handshake with an HTTP response.
func (s *wsSession) reject(code int, reason string, h zhttp.Headers, body []byte) {
	s.sendClient(zhttp.Packet{Type: zhttp.Error, Condition: "rejected", Code: int64(code), HasCode: true,
		Reason: reason, Headers: h, HasHeaders: true, Body: body}, true)
	s.end()
}

// reject502 is Pushpin's 502; routes with debug get the detail.
func (s *wsSession) reject502(detail string) {
	body := textProxyError
	if s.px.cfg.Proxy.Debug || (s.route != nil && s.route.Debug) {
		body = detail + "\n"
	}
	s.reject(502, "Bad Gateway", nil, []byte(body))
}

// expire ends a session whose peer went silent (zhttp.md §9).
func (s *wsSession) expire(client bool) {
	if client {
		s.debug().Msg("client session expired")
		if !s.cGone {
			s.sendClient(zhttp.Packet{Type: zhttp.Cancel}, true)
		}
		s.end()
		return
	}
	s.debug().Msg("backend session expired")
	if s.be != nil {
		s.be.expired()
	}
}

// tick runs the session's timers.
func (s *wsSession) tick(now int64) {
	if s.closeBy > 0 && now >= s.closeBy {
		s.end()
		return
	}
	if s.kaDue > 0 && now >= s.kaDue {
		s.px.wsctl.send(wscontrol.NewItem(s.cid, wscontrol.NeedKeepAlive))
		s.kaDue = 0
		if s.kaInterval {
			s.kaDue = now + s.kaTimeout
		}
	}
	if s.be != nil {
		if t := s.be.due(); t > 0 && now >= t {
			s.be.tick(now)
		}
	}
}

// newReqID numbers the session's ws-control requests.
func (s *wsSession) newReqID() string {
	s.nextReq++
	return strconv.FormatInt(s.nextReq, 10)
}

// ackSend acks a handler `send` that carried a req-id.
func (s *wsSession) ackSend(reqID string) {
	if reqID != "" {
		it := wscontrol.NewItem(s.cid, wscontrol.Ack)
		it.ReqID = reqID
		s.px.wsctl.send(it)
	}
}
