// Package woh is the state machine of one WebSocket-over-HTTP connection
// (websocket-over-http.md): it decides which HTTP requests to make to the
// backend and what to do with their responses, and holds no socket, zhttp,
// goroutine or timer. The caller (the proxy's WebSocket session, serialized
// by its own mutex) feeds it inputs, executes the Actions they return, gives
// it the time, and asks for NextDeadline. See README.md.
package woh

import (
	"math/rand/v2"
	"time"

	"github.com/pushpin-go/pushpin/proto/wsevents"
	"github.com/pushpin-go/pushpin/proto/zhttp"
	"github.com/pushpin-go/pushpin/proxy/internal/gripws"
)

// Limits of Pushpin 1.36 (websocketoverhttp.cpp), used when the Config
// leaves them zero.
const (
	// Window bounds the client message bytes in the request in flight plus
	// those queued; past it client credits are withheld. It also bounds the
	// backend message bytes waiting for the client before a new request.
	Window = 200000
	// MaxResponseBody bounds a response body.
	MaxResponseBody = 1000000
	// RejectBodyMax bounds the body of a rejected handshake.
	RejectBodyMax = 100000
	// MaxMessage bounds one client message while it is being assembled
	// from fragments; Pushpin failed any message that filled Window.
	MaxMessage = 1 << 20
	// MinKeepAlive is the smallest Keep-Alive-Interval honoured, seconds.
	MinKeepAlive = 20
	// MaxRetries is how often a request that never reached the backend is
	// retried, after RetryBase, 2*RetryBase, 4*RetryBase, ... plus jitter.
	MaxRetries = 5
	RetryBase  = time.Second
)

// Config is what a Conn needs for its whole life.
type Config struct {
	// ConnectionID is sent as Connection-Id on every request; keep it when
	// failing over to the next target. "" picks NewConnectionID().
	ConnectionID string
	// Headers are the client's handshake headers after the proxy's request
	// rules (grip.md §1), without a Grip-Sig of the proxy's own. The Conn
	// removes Upgrade, Accept, Connection-Id, Content-Length, Content-Type,
	// Sec-WebSocket-Extensions, hop-by-hop and Meta-* headers itself.
	Headers zhttp.Headers
	// Sign, if set, appends per-request headers (a fresh Grip-Sig and
	// Grip-Feature) to h and returns it; called for every request, retries
	// and keep-alives included.
	Sign func(h zhttp.Headers) zhttp.Headers
	// OneEvent is the route target's one_event: one event per request.
	OneEvent bool
	// NoGrip is the route's no_grip: no grip extension is offered and a
	// grip extension in the OPEN response is passed to the client.
	NoGrip bool
	// TrustedClient: the client's own Grip-Sig verified; GRIP is left to
	// it, so the grip extension is passed to it and c: messages are data.
	TrustedClient bool
	// Jitter returns the random part of a retry delay; nil means 0-1 s.
	Jitter func() time.Duration
	// Limits; zero means the package constant.
	Window, MaxResponseBody, MaxMessage int
}

type phase uint8

const (
	opening  phase = iota // OPEN not yet accepted
	open                  // accepted
	finished              // Finished returned
)

type message struct {
	typ  wsevents.Type
	data []byte
}

// Conn is one WebSocket-over-HTTP connection. Its methods are not safe for
// concurrent use. Each input returns the actions to execute in order, in
// a fresh slice the caller may keep while calling the Conn again.
type Conn struct {
	cfg  Config
	base zhttp.Headers // sanitized client headers + the grip offer
	cid  string

	phase     phase
	closing   bool // a CLOSE is due or sent (client close or detach)
	closeCode int
	closeText string
	closeSent bool // the backend received our CLOSE
	peerClose bool // the backend sent CLOSE first
	clientCl  bool // CloseClient was returned
	detached  bool
	gone      bool // client vanished: DISCONNECT due
	discSent  bool
	refresh   bool

	// client → backend
	queue      []message
	queueBytes int
	partial    []byte
	partialTyp wsevents.Type
	partialOn  bool
	owed       int // credits withheld from the client
	pending    int // backend bytes not yet written to the client

	// request in flight
	inflight   bool
	retryWait  bool
	retries    int
	retryAt    time.Time
	kaAt       time.Time
	reqBody    []byte
	reqContent int // client message bytes in reqBody (window)
	reqClose   bool
	reqOpen    bool
	// Content-Bytes-Accepted (Pushpin 1.41): the request's messages, kept
	// until the backend says how many of their bytes it accepted; the
	// rest goes back to the head of the queue and is replayed.
	reqMsgs      []message
	reqMaxed     bool // pending data was left out: the backend must accept some
	reqCloseSize int  // content bytes of the request's CLOSE (code + reason)
	reqReplay    int  // replayed content at the start of reqBody
	replayMsgs   int  // leading queue messages the backend left unaccepted
	replayBytes  int

	// response being read
	respCode    int
	respReason  string
	respHeaders zhttp.Headers
	respBody    []byte
	respOK      bool

	keepAlive int    // seconds; 0 disabled
	meta      []meta // Set-Meta values, in order
	filter    gripws.Filter
	evs       []wsevents.Event
}

type meta struct{ name, value string }

// New returns a Conn and the actions that start it (the OPEN request).
func New(cfg Config) (*Conn, []Action) {
	if cfg.Window <= 0 {
		cfg.Window = Window
	}
	if cfg.MaxResponseBody <= 0 {
		cfg.MaxResponseBody = MaxResponseBody
	}
	if cfg.MaxMessage <= 0 {
		cfg.MaxMessage = MaxMessage
	}
	if cfg.Jitter == nil {
		cfg.Jitter = func() time.Duration { return rand.N(time.Second) }
	}
	c := &Conn{cfg: cfg, cid: cfg.ConnectionID, closeCode: -1}
	if c.cid == "" {
		c.cid = NewConnectionID()
	}
	c.base = sanitize(cfg.Headers, !cfg.NoGrip)
	// Only base is used from here on; an idle connection keeps one copy
	// of the headers, not two.
	c.cfg.Headers = nil
	var out []Action
	c.send(&out)
	return c, out
}

// ConnectionID returns the Connection-Id sent to the backend.
func (c *Conn) ConnectionID() string { return c.cid }

// Done reports whether Finished was returned.
func (c *Conn) Done() bool { return c.phase == finished }

// Accepted reports whether the backend accepted the connection (Accept
// was returned).
func (c *Conn) Accepted() bool { return c.phase != opening }

// KeepAliveInterval returns the backend's Keep-Alive-Interval in effect
// (0: none).
func (c *Conn) KeepAliveInterval() time.Duration {
	return time.Duration(c.keepAlive) * time.Second
}

// Meta returns the connection meta set by the backend (Set-Meta-*), name
// → value, sent back as Meta-<name> on every request.
func (c *Conn) Meta() map[string]string {
	m := make(map[string]string, len(c.meta))
	for _, x := range c.meta {
		m[x.name] = x.value
	}
	return m
}

// WindowUsed returns the client message bytes held: in flight, queued and
// being assembled.
func (c *Conn) WindowUsed() int { return c.reqContent + c.queueBytes + len(c.partial) }

// NextDeadline returns when Tick must next be called; zero for never.
func (c *Conn) NextDeadline() time.Time {
	if c.retryWait {
		return c.retryAt
	}
	return c.kaAt
}

// Tick fires the retry and keep-alive timers that are due at now.
func (c *Conn) Tick(now time.Time) []Action {
	var out []Action
	switch {
	case c.phase == finished:
	case c.retryWait && !now.Before(c.retryAt):
		c.retryWait = false
		c.retryAt = time.Time{}
		out = append(out, SendRequest{Headers: c.requestHeaders(), Body: c.reqBody, Attempt: c.retries})
	case !c.inflight && !c.kaAt.IsZero() && !now.Before(c.kaAt):
		// A keep-alive (or the re-sent OPEN of an unaccepted connection)
		// goes even while the client is slow to read, as in Pushpin.
		c.send(&out)
	}
	return out
}

// ClientMessage queues one complete client message (Text, Binary, Ping or
// Pong); data is copied. Same as ClientFrame(t, data, true).
func (c *Conn) ClientMessage(t wsevents.Type, data []byte) []Action {
	return c.ClientFrame(t, data, true)
}

// ClientFrame takes one client frame of len(data) bytes, whose zws credits
// the caller spent: t is the message type on a first frame (ignored on a
// continuation, i.e. while a message is being assembled), Ping or Pong for
// control frames, which may come between fragments; fin false means more
// frames of the message follow. data is copied.
func (c *Conn) ClientFrame(t wsevents.Type, data []byte, fin bool) []Action {
	var out []Action
	n := len(data)
	if c.phase == finished || c.detached || c.gone || c.closing {
		// Nobody will read it: discard, but keep the client's credits
		// flowing (a detached client stays connected).
		if n > 0 {
			out = append(out, CreditClient{N: n})
		}
		return out
	}
	c.owed += n
	switch {
	case t == wsevents.Ping || t == wsevents.Pong:
		c.enqueue(t, append([]byte(nil), data...))
	case c.partialOn || !fin:
		if !c.partialOn {
			c.partialOn, c.partialTyp = true, t
		}
		c.partial = append(c.partial, data...)
		if len(c.partial) > c.cfg.MaxMessage {
			c.tooBig(&out)
			return out
		}
		if fin {
			c.enqueue(c.partialTyp, c.partial)
			c.partial, c.partialOn = nil, false
		}
	default:
		c.enqueue(t, append([]byte(nil), data...))
	}
	c.credit(&out)
	c.maybeSend(&out)
	return out
}

func (c *Conn) enqueue(t wsevents.Type, data []byte) {
	c.queue = append(c.queue, message{typ: t, data: data})
	c.queueBytes += len(data)
}

// tooBig closes a client whose message exceeds MaxMessage with 1009 and
// tells the backend it is gone.
func (c *Conn) tooBig(out *[]Action) {
	*out = append(*out, CloseClient{Code: 1009, Reason: "message too big"})
	c.clientCl = true
	c.goneNow(out)
}

// credit returns withheld credits while the window has room, or when an
// assembling message is all there is (holding back would deadlock it).
func (c *Conn) credit(out *[]Action) {
	if c.owed == 0 {
		return
	}
	lone := c.partialOn && c.reqContent == 0 && c.queueBytes == 0
	if c.WindowUsed() < c.cfg.Window || lone {
		*out = append(*out, CreditClient{N: c.owed})
		c.owed = 0
	}
}

// ClientClose reports the client's close frame (code -1: none).
func (c *Conn) ClientClose(code int, reason string) []Action {
	var out []Action
	switch {
	case c.detached:
		// Nobody upstream answers: the session echoes the close itself.
		if !c.clientCl {
			c.clientCl = true
			out = append(out, CloseClient{Code: -1})
		}
	case c.phase == finished || c.gone || c.closing:
	case c.phase == opening:
		// The client cannot close before its 101; treat it as gone.
		c.goneNow(&out)
	default:
		c.startClose(code, reason)
		c.maybeSend(&out)
	}
	return out
}

// startClose queues a CLOSE after the queued messages; a message still
// being assembled can never complete and is dropped.
func (c *Conn) startClose(code int, reason string) {
	c.closing, c.closeCode, c.closeText = true, code, reason
	c.partial, c.partialOn = nil, false
}

// ClientGone reports that the client vanished without a close handshake:
// queued messages are discarded and a DISCONNECT request is sent alone once
// no request is in flight; its response is ignored.
func (c *Conn) ClientGone() []Action {
	var out []Action
	if c.phase != finished && !c.gone && !c.detached {
		c.goneNow(&out)
	}
	return out
}

func (c *Conn) goneNow(out *[]Action) {
	c.gone = true
	c.queue, c.queueBytes, c.owed = nil, 0, 0
	c.replayMsgs, c.replayBytes = 0, 0
	c.partial, c.partialOn = nil, false
	c.refresh = false
	c.maybeSend(out)
}

// Refresh makes the Conn send a request now (or right after the one in
// flight), e.g. for the command socket's refresh.
func (c *Conn) Refresh() []Action {
	var out []Action
	if c.phase == open && !c.gone && !c.closing {
		c.refresh = true
		c.maybeSend(&out)
	}
	return out
}

// Detach drops the backend side (GRIP detach): a CLOSE request goes after
// the queued messages, later client messages are discarded, the backend's
// answers no longer reach the client, and the client stays connected.
func (c *Conn) Detach() []Action {
	var out []Action
	if c.phase != open || c.detached || c.gone {
		return out
	}
	c.detached = true
	if c.owed > 0 {
		out = append(out, CreditClient{N: c.owed})
		c.owed = 0
	}
	if !c.closing {
		c.startClose(-1, "")
		c.maybeSend(&out)
	}
	return out
}

// SetPendingToClient tells the Conn how many bytes of backend messages are
// still waiting to be written to the client; no request but a keep-alive,
// refresh or DISCONNECT is made while that is Window or more.
func (c *Conn) SetPendingToClient(n int) []Action {
	var out []Action
	c.pending = n
	c.maybeSend(&out)
	return out
}

func (c *Conn) finish(out *[]Action) {
	c.phase = finished
	c.inflight, c.retryWait = false, false
	c.kaAt, c.retryAt = time.Time{}, time.Time{}
	c.queue, c.queueBytes, c.partial, c.respBody = nil, 0, nil, nil
	c.reqMsgs, c.replayMsgs, c.replayBytes = nil, 0, 0
	*out = append(*out, Finished{})
}
