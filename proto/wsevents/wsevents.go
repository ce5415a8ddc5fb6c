// Package wsevents encodes and parses application/websocket-events bodies,
// the wire format of WebSocket-over-HTTP (websocket-over-http.md §3):
//
//	event = type [ " " hexlen CRLF content ] CRLF
//
// Encoding appends to a caller's buffer; parsing returns events whose
// Content aliases the body, so neither allocates per event. It holds no
// connection logic (see proxy/internal/woh for that).
package wsevents

import (
	"errors"
	"strconv"
)

// ContentType is the Content-Type and Accept value of WebSocket-over-HTTP
// requests and responses. Responses must carry exactly this string.
const ContentType = "application/websocket-events"

// Type is an event type. Unknown types are never produced by Parse.
type Type uint8

// Event types.
const (
	Open Type = iota + 1
	Text
	Binary
	Ping
	Pong
	Close
	Disconnect
)

var names = [...]string{
	Open:       "OPEN",
	Text:       "TEXT",
	Binary:     "BINARY",
	Ping:       "PING",
	Pong:       "PONG",
	Close:      "CLOSE",
	Disconnect: "DISCONNECT",
}

// String returns the wire name ("TEXT"), or "Type(n)" for an invalid value.
func (t Type) String() string {
	if t >= Open && t <= Disconnect {
		return names[t]
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// lookup maps a wire name to its Type; 0 for unknown names. Names are
// case-sensitive, as in Pushpin.
func lookup(b []byte) Type {
	for t := Open; t <= Disconnect; t++ {
		if string(b) == names[t] {
			return t
		}
	}
	return 0
}

// Event is one decoded event. Content aliases the parsed body.
type Event struct {
	Type    Type
	Content []byte
}

// ErrInvalid is returned (wrapped) by Parse for a body Pushpin would refuse
// as a whole: a type line without CRLF, a bad hex length, or content
// running past the end of the body.
var ErrInvalid = errors.New("invalid websocket-events body")

// Append appends one event to dst. Empty content is encoded without a length
// (`TEXT\r\n`), as Pushpin does; parsers must accept `TEXT 0\r\n\r\n` too.
func Append(dst []byte, t Type, content []byte) []byte {
	dst = append(dst, t.String()...)
	if len(content) == 0 {
		return append(dst, '\r', '\n')
	}
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(len(content)), 16)
	dst = append(dst, '\r', '\n')
	dst = append(dst, content...)
	return append(dst, '\r', '\n')
}

// AppendClose appends a CLOSE event: content is the 2-byte big-endian code
// followed by the UTF-8 reason; a negative code (no status code) gives
// `CLOSE\r\n` and drops the reason, which cannot be sent without a code.
func AppendClose(dst []byte, code int, reason string) []byte {
	if code < 0 {
		return Append(dst, Close, nil)
	}
	n := 2 + len(reason)
	dst = append(dst, "CLOSE "...)
	dst = strconv.AppendUint(dst, uint64(n), 16)
	dst = append(dst, '\r', '\n', byte(code>>8), byte(code))
	dst = append(dst, reason...)
	return append(dst, '\r', '\n')
}

// CloseCode splits a CLOSE event's content into code and reason. With fewer
// than 2 bytes there is no code: it returns -1 and "".
func CloseCode(content []byte) (code int, reason string) {
	if len(content) < 2 {
		return -1, ""
	}
	return int(content[0])<<8 | int(content[1]), string(content[2:])
}

// Parse decodes a whole body and appends its events to dst. Unknown types
// are skipped. On any error it returns dst unchanged (truncated to its input
// length), since Pushpin acts on no event of an invalid body.
//
// Rules (Pushpin 1.36): the type line runs to the first CRLF; if it has a
// space, the rest is the hex content length; the next len bytes are content
// and the 2 bytes after it are skipped without being checked (a body may end
// right after the content). Deviation: content that runs past the end of the
// body is an error; Pushpin silently delivered the truncated content.
func Parse(body []byte, dst []Event) ([]Event, error) {
	base := len(dst)
	for i := 0; i < len(body); {
		eol := indexCRLF(body, i)
		if eol < 0 {
			return dst[:base], errAt(ErrInvalid, "type line without CRLF", i)
		}
		line := body[i:eol]
		i = eol + 2
		var content []byte
		if sp := indexByte(line, ' '); sp >= 0 {
			n, ok := parseHex(line[sp+1:])
			if !ok {
				return dst[:base], errAt(ErrInvalid, "bad content length", eol)
			}
			if n > len(body)-i {
				return dst[:base], errAt(ErrInvalid, "content past end of body", i)
			}
			content = body[i : i+n : i+n]
			line = line[:sp]
			i += n + 2
		}
		if t := lookup(line); t != 0 {
			dst = append(dst, Event{Type: t, Content: content})
		}
	}
	return dst, nil
}

func errAt(err error, what string, off int) error {
	return &posError{err: err, what: what, off: off}
}

type posError struct {
	err  error
	what string
	off  int
}

func (e *posError) Error() string {
	return e.err.Error() + ": " + e.what + " at byte " + strconv.Itoa(e.off)
}

func (e *posError) Unwrap() error { return e.err }

func indexCRLF(b []byte, from int) int {
	for i := from; i+1 < len(b); i++ {
		if b[i] == '\r' && b[i+1] == '\n' {
			return i
		}
	}
	return -1
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// maxContent bounds a parsed length so it cannot overflow an int on 32-bit
// platforms; any real body is far smaller.
const maxContent = 1 << 30

// parseHex parses 1*HEXDIG (either case). Pushpin used QByteArray::toInt,
// which also takes signs, "0x" and surrounding blanks; no backend sends
// those, so they are refused rather than guessed at.
func parseHex(b []byte) (int, bool) {
	if len(b) == 0 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		if n = n<<4 | int(d); n > maxContent {
			return 0, false
		}
	}
	return n, true
}
