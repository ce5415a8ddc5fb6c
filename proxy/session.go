package proxy

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/configs/routing"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

const (
	// initCredits is what Pushpin grants a peer for body bytes up front, in
	// both directions (condure's request body, zurl's response body).
	initCredits = 200000
	// maxGripBody is the largest GRIP response body the proxy buffers.
	maxGripBody = 100000
	// maxRetained is how much request body is kept for failover and for
	// the Accept message's request-data.
	maxRetained = 100000
	// MaxBufferedBody is the largest request body without Content-Length
	// (a chunked one) that the backend gets whole, with Content-Length: the
	// backend request waits until the body is complete or longer than
	// this, then streams (chunked). Many backends (Python's http.server,
	// several WSGI servers) cannot read a chunked request body. Pushpin
	// 1.36 waits for 10,000 bytes for certain and sends on whatever else
	// came in while its handler inspected the request (70-200 KB in our
	// runs, by luck); a fixed limit makes it the same every time.
	MaxBufferedBody = 100000
)

type evKind uint8

const (
	evClient evKind = iota // packet from the connection manager
	evZurl                 // packet from zurl
	evExpire               // a side sent nothing for the expiry time
	evAck                  // the deferred ack is due (see begin)
	evTick                 // a WebSocket session's timer is due
)

type event struct {
	kind   evKind
	p      *zhttp.Packet
	client bool // evExpire: the client side expired (else the backend side)
}

type phase uint8

const (
	phRequest phase = iota // waiting for the backend's response head
	phRelay                // streaming a response to the client
	phGrip                 // buffering a GRIP response
	phHandoff              // handoff-start sent, waiting for handoff-proceed
	phDone
)

// session is one client HTTP request, from the connection manager's first
// packet until the response is complete, the session is handed to the
// handler, or either side cancels. It has no goroutine of its own: the
// goroutine that received a packet handles it in place under mu (a
// hand-off to a per-session goroutine cost more than the handling), so
// events from one socket keep their order and the two sockets' events are
// serialized.
type session struct {
	px     *Proxy
	logger *zerolog.Logger // see lg
	key    string
	client *stream
	zcur   atomic.Pointer[stream] // current outbound request, for the ticker

	mu      sync.Mutex // everything below
	cleaned bool       // forgotten (unlock) after it ended
	acked   bool       // a packet went to the client (its first carries ext.multi)

	// client side
	first    *zhttp.Packet
	inSeq    int64
	credits  int64 // response body bytes the client still accepts
	multi    bool
	mdata    bool // the client accepts list-form ids on data packets (ext.multi-data)
	userData []byte
	https    bool

	// request
	route      *routing.Route
	target     int
	tried      []string
	host, rest string // client URI host[:port] and path+query (path rewritten)
	trusted    bool
	outURI     string
	outHeaders zhttp.Headers
	reqQ       [][]byte // client body not yet forwarded
	reqDone    bool     // client body complete
	holdBody   bool     // the backend request waits for the body (see bufferBody)
	reqSentEnd bool     // the backend got the end of the body
	retained   []byte   // body forwarded so far (up to maxRetained)
	retainAll  bool     // retained holds all of it (failover possible)

	// backend side
	z        *stream // nil for the test backend
	zIn      int64
	zCredits int64
	zEnded   bool
	gotHead  bool

	// response
	ph           phase
	code         int
	reason       string
	respHeaders  zhttp.Headers // as the backend sent them
	outHead      zhttp.Headers // as the client gets them
	headSent     bool
	respQ        [][]byte
	respEnd      bool
	gripBuf      []byte
	handoffAfter bool // oversized stream hold: hand off with response-sent once relayed
	respSent     bool
}

func newSession(px *Proxy, p *zhttp.Packet, now int64) *session {
	s := &session{
		px:        px,
		key:       clientKey(p.From, p.ID),
		client:    newStream(p.ID, p.From, now),
		first:     p,
		retainAll: true,
	}
	return s
}

// lg is the session's logger (rid and route fields), made at first use:
// making it for every request cost two allocations, and sessions rarely log.
func (s *session) lg() *zerolog.Logger {
	if s.logger == nil {
		c := s.px.log.With().Str("rid", s.client.id)
		if s.route != nil {
			c = c.Str("route", s.route.ID)
		}
		l := c.Logger()
		s.logger = &l
	}
	return s.logger
}

// debug and trace return nil (a no-op event) unless the level is on,
// without making the logger.
func (s *session) debug() *zerolog.Event {
	if s.px.log.GetLevel() > zerolog.DebugLevel {
		return nil
	}
	return s.lg().Debug()
}

func (s *session) trace() *zerolog.Event {
	if s.px.log.GetLevel() > zerolog.TraceLevel {
		return nil
	}
	return s.lg().Trace()
}

// start registers a new session and handles its first packet; it reports
// false when the id is taken. The lock is held from before the session is
// visible, so no later packet can overtake the first.
func (s *session) start() bool {
	s.mu.Lock()
	if !s.px.sessions.add(s.key, s) {
		s.mu.Unlock()
		return false
	}
	s.begin()
	s.unlock()
	return true
}

// handle applies one event on the caller's goroutine.
func (s *session) handle(ev event) {
	s.mu.Lock()
	if s.ph != phDone {
		switch ev.kind {
		case evClient:
			s.handleClient(ev.p)
		case evZurl:
			s.handleZurl(ev.p)
		case evExpire:
			s.expire(ev.client)
		case evAck:
			if !s.acked {
				s.sendClient(zhttp.Packet{Type: zhttp.KeepAlive}, false)
			}
		}
	}
	s.unlock()
}

// unlock releases mu, first forgetting the session if it just ended.
func (s *session) unlock() {
	if s.ph == phDone && !s.cleaned {
		s.cleaned = true
		s.client.ka.Store(false)
		s.px.sessions.del(s.key, s)
		s.closeZ()
	}
	s.mu.Unlock()
}

// end marks the session over; it is forgotten when the current event is done.
func (s *session) end() {
	s.ph = phDone
	s.client.ka.Store(false)
}

// sendClient sends a packet toward the connection manager. The first one
// (the ack, or the response itself when the ack was deferred) echoes
// ext.multi, as Pushpin's ack does.
func (s *session) sendClient(p zhttp.Packet, final bool) {
	p.UserData = s.userData
	if !s.acked {
		s.acked = true
		p.Ext.Multi = s.multi
	}
	s.px.cw.write(&outItem{st: s.client, pkt: p, final: final})
}

// begin validates the first packet, acknowledges it and starts the
// backend request.
func (s *session) begin() {
	p := s.first
	s.userData = p.UserData
	s.multi = p.Ext.Multi
	s.mdata = p.Ext.MultiData
	switch {
	case p.Type != zhttp.Data || p.Seq != 0 || p.URI == "":
		s.debug().Msg("bad first packet")
		s.sendClient(zhttp.Packet{Type: zhttp.Error, Condition: "bad-request"}, true)
		s.end()
		return
	case p.IsWebSocket():
		// WebSocket proxying is not implemented yet: refuse the handshake.
		s.sendClient(zhttp.Packet{Type: zhttp.Error, Condition: "rejected", Code: 501, HasCode: true,
			Reason: "Not Implemented", Headers: zhttp.Headers{{Name: "Content-Type", Value: "text/plain"}},
			Body: []byte("WebSocket is not supported.\n")}, true)
		s.end()
		return
	case !p.Stream:
		s.sendClient(zhttp.Packet{Type: zhttp.Error, Condition: "bad-request"}, true)
		s.end()
		return
	}
	s.inSeq = 1
	s.credits = p.Credits
	// Pushpin acks at once; the ack tells the client our address (for a
	// cancel) and, with a body to come, its credits. Without a body, a
	// response within ackDelay tells it the same, so the keep-alive is only
	// sent if none came by then: one packet less per request each way.
	switch {
	case p.More:
		s.sendClient(zhttp.Packet{Type: zhttp.Credit, Credits: int64(initCredits - len(p.Body)), HasCredits: true}, false)
	case s.px.ackDelay <= 0:
		s.sendClient(zhttp.Packet{Type: zhttp.KeepAlive}, false)
	default:
		s.px.acks.Push(s.key)
	}
	s.client.multi = s.multi
	s.client.ka.Store(true)
	if len(p.Body) > 0 {
		s.reqQ = append(s.reqQ, p.Body)
	}
	s.reqDone = !p.More
	s.startRequest()
}

func (s *session) handleClient(p *zhttp.Packet) {
	s.client.lastIn.Store(time.Now().UnixNano())
	if p.Type == zhttp.Cancel {
		s.cancelZurl()
		s.end()
		return
	}
	if p.Seq != s.inSeq {
		s.debug().Int64("expected", s.inSeq).Int64("got", p.Seq).Msg("client: bad seq, canceling")
		s.sendClient(zhttp.Packet{Type: zhttp.Cancel}, true)
		s.cancelZurl()
		s.end()
		return
	}
	s.inSeq++
	if p.HasCredits {
		s.credits += p.Credits
	}
	switch p.Type {
	case zhttp.Data:
		if !s.reqDone {
			if len(p.Body) > 0 {
				s.reqQ = append(s.reqQ, p.Body)
			}
			s.reqDone = !p.More
			if s.holdBody {
				s.releaseBody()
			} else {
				s.pumpRequest()
			}
		}
	case zhttp.Error:
		s.cancelZurl()
		s.end()
		return
	case zhttp.HandoffProceed:
		if s.ph == phHandoff {
			s.sendAccept()
			return
		}
	}
	if p.HasCredits {
		s.pumpResponse()
	}
}

// expire ends a session whose peer went silent (zhttp.md §9).
func (s *session) expire(client bool) {
	if s.ph == phDone {
		return
	}
	if client {
		s.debug().Msg("client session expired")
		s.cancelZurl()
		s.sendClient(zhttp.Packet{Type: zhttp.Cancel}, true)
		s.end()
		return
	}
	s.debug().Msg("backend session expired")
	s.cancelZurl()
	s.onBackendError("session-timeout")
}
