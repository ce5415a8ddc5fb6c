package woh

import (
	"errors"

	"github.com/pushpin-go/pushpin/proto/wsevents"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// Action is one thing the caller must do, returned by the Conn's input
// methods in order. The caller type-switches on the concrete types below.
type Action interface{ action() }

// SendRequest: POST Body with Headers to the target (the client's URI with
// ws→http, wss→https; see HTTPScheme). Only one is ever outstanding: answer
// it with ResponseHead/ResponseBody or RequestFailed. A retry repeats the
// same Body (Attempt > 0) with freshly built Headers. Body stays unmodified
// by the Conn, so it may be handed to the transport as is.
type SendRequest struct {
	Headers zhttp.Headers
	Body    []byte
	Attempt int // 0 for a first try, n for the n-th retry
}

// Accept: answer the client's handshake with 101 and Headers. Grip says the
// backend enabled GRIP (the Conn already filters messages with Prefix;
// Control actions follow); the grip extension is not in Headers.
type Accept struct {
	Headers zhttp.Headers
	Grip    bool
	Prefix  string
}

// Reject: answer the client's handshake with the backend's own response
// (it was not a WebSocket-over-HTTP answer to OPEN). Body is at most
// RejectBodyMax bytes; Headers have no Content-Length or hop-by-hop headers.
type Reject struct {
	Code    int
	Reason  string
	Headers zhttp.Headers
	Body    []byte
}

// OpenFailed: the OPEN request got no usable answer. TryNext: it never
// reached the backend, so fail over to the route's next target (with a new
// Conn and the same ConnectionID); otherwise, or with no target left,
// answer the client 502.
type OpenFailed struct {
	TryNext bool
	Err     error
}

// Deliver: send one message to the client (the caller splits it into
// frames). Data is never modified by the Conn and may be retained.
type Deliver struct {
	Type wsevents.Type // Text, Binary, Ping or Pong
	Data []byte
}

// Control: a GRIP control message from the backend (the JSON after "c:"),
// for grip.ParseControlMessage. A detach is answered by calling Detach.
type Control struct {
	JSON []byte
}

// Subscribe: subscribe the connection to Channel (route prefix not yet
// applied), from a Grip-Channel header on the OPEN response.
type Subscribe struct {
	Channel string
	Filters []string
}

// CloseClient: send the client a close frame; Code -1 means no status code.
// The client's echo is reported with ClientClose.
type CloseClient struct {
	Code   int
	Reason string
}

// DropClient: drop the client connection at once, without a close frame.
type DropClient struct {
	Err error // why; wraps one of the package's Err values
}

// CreditClient: give the client N more bytes of zws credits. The Conn
// withholds credits while its window is full, so the connection manager
// stops reading the client; the caller grants the initial credits.
type CreditClient struct {
	N int
}

// Finished: the backend side is over; no action follows and inputs are
// ignored except ClientFrame (credits) and ClientClose (echo) after a
// detach. Cancel any request still in flight.
type Finished struct{}

func (SendRequest) action()  {}
func (Accept) action()       {}
func (Reject) action()       {}
func (OpenFailed) action()   {}
func (Deliver) action()      {}
func (Control) action()      {}
func (Subscribe) action()    {}
func (CloseClient) action()  {}
func (DropClient) action()   {}
func (CreditClient) action() {}
func (Finished) action()     {}

// Errors carried by DropClient and OpenFailed, for errors.Is.
var (
	// ErrBadResponse: the backend's answer was not status 200 with
	// Content-Type application/websocket-events.
	ErrBadResponse = errors.New("backend response is not websocket-events")
	// ErrBodyTooLarge: a response body over MaxResponseBody.
	ErrBodyTooLarge = errors.New("backend response body too large")
	// ErrInvalidEvents: a response body that does not parse.
	ErrInvalidEvents = errors.New("backend sent invalid websocket-events")
	// ErrNoOpen: the OPEN response neither starts with OPEN nor asks for
	// keep-alives.
	ErrNoOpen = errors.New("backend did not accept the connection")
	// ErrUnexpectedOpen: OPEN in a response after the connection was open.
	ErrUnexpectedOpen = errors.New("backend sent OPEN on an open connection")
	// ErrDisconnect: the backend sent DISCONNECT.
	ErrDisconnect = errors.New("backend disconnected the connection")
	// ErrUncleanClose: the backend answered the client's CLOSE without CLOSE
	// and without keep-alives, so it has no further chance to close.
	ErrUncleanClose = errors.New("backend did not answer close")
	// ErrRequestFailed: a request failed after reaching the backend, or
	// after its retries.
	ErrRequestFailed = errors.New("request to backend failed")
)
