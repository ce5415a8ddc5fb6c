// Package gripws is the proxy's GRIP filter for backend→client WebSocket
// messages (grip.md §10.1), shared by the passthrough and the
// WebSocket-over-HTTP paths so that both treat a message alike.
//
// Once the backend has enabled GRIP (Sec-WebSocket-Extensions: grip[;
// message-prefix=...]), a text message starting with "c:" is a control
// message for the proxy, never forwarded; any other text or binary message
// must start with the message prefix (default "m:"), which is stripped, or
// it is dropped. Ping and pong frames are always relayed. Without GRIP every
// message passes unchanged.
package gripws

import (
	"bytes"
	"strings"

	"github.com/pushpin-go/pushpin/proto/grip"
)

// Verdict says what to do with one backend message.
type Verdict uint8

// Verdicts.
const (
	// Pass: relay the returned data (prefix stripped) to the client.
	Pass Verdict = iota
	// Control: the returned data is the control message's JSON (after
	// "c:"), for grip.ParseControlMessage; nothing goes to the client.
	Control
	// Drop: a message without the message prefix; nothing goes anywhere.
	Drop
)

// Filter is the GRIP state of one connection. The zero value is disabled:
// everything passes.
type Filter struct {
	Enabled bool
	Prefix  string // stripped from data messages; "" lets all pass unchanged
}

// New returns the filter for a negotiated grip extension.
func New(ext grip.WSExtension) Filter {
	// Cloned: the header it came from shares its packet's arena, which a
	// long-lived connection must not keep alive.
	return Filter{Enabled: ext.Enabled, Prefix: strings.Clone(ext.MessagePrefix)}
}

// Message classifies one complete message. binary is false for text.
// The returned data aliases msg.
func (f Filter) Message(binary bool, msg []byte) (Verdict, []byte) {
	if !f.Enabled {
		return Pass, msg
	}
	if !binary && bytes.HasPrefix(msg, []byte(grip.ControlPrefix)) {
		return Control, msg[len(grip.ControlPrefix):]
	}
	if !bytes.HasPrefix(msg, []byte(f.Prefix)) {
		return Drop, nil
	}
	return Pass, msg[len(f.Prefix):]
}

// Opcode is the kind of a frame given to Frames.Frame.
type Opcode uint8

// Frame kinds, as far as the filter cares.
const (
	OpText Opcode = iota
	OpBinary
	OpContinuation
	OpControlFrame // ping, pong: always relayed, may sit between fragments
)

// Frames applies the filter to a fragmented stream, where only the first
// frame of a message carries the prefix. The rule for a message is decided
// on its first frame and kept for its continuations. A control message must
// be a single frame (as in Pushpin); a fragmented "c:" message is dropped
// whole. Unlike Pushpin 1.36, which dropped only the first frame of an
// unprefixed fragmented message and relayed its continuations, the whole
// message is dropped.
type Frames struct {
	Filter
	skipping bool // continuations of the current message are dropped
}

// Frame classifies one frame; fin is false when more frames of the same
// message follow. The returned data aliases data.
func (s *Frames) Frame(op Opcode, data []byte, fin bool) (Verdict, []byte) {
	switch op {
	case OpControlFrame:
		return Pass, data
	case OpContinuation:
		if s.skipping {
			s.skipping = !fin
			return Drop, nil
		}
		return Pass, data
	}
	v, out := s.Message(op == OpBinary, data)
	switch {
	case v == Control && !fin:
		v, out = Drop, nil
		s.skipping = true
	case v == Drop:
		s.skipping = !fin
	default:
		s.skipping = false
	}
	return v, out
}
