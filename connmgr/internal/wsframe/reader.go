// Package wsframe reads and writes RFC 6455 frames on byte slices the
// caller owns: the connection manager's event loop reads whatever the
// socket had into its buffer and parses it here, a frame possibly split
// over many reads, without a goroutine or an io.Reader per connection.
// Headers are parsed and checked with github.com/gobwas/ws; payloads are
// unmasked in place (ws.Cipher).
package wsframe

import (
	"io"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// Kind is what Reader.Next found.
type Kind uint8

// Kinds of Next results.
const (
	// NeedMore: no complete unit in the input; read more and call again
	// with the unconsumed bytes first.
	NeedMore Kind = iota
	// Blocked: message payload (or a ping/pong) is next but max is too
	// small for it; call again once more may be taken.
	Blocked
	// Data: a piece of a text or binary message.
	Data
	Ping
	Pong
	Close
)

// Frame is one result of Reader.Next. Payload is unmasked, in place: a
// window of the input, valid until the caller reuses it.
type Frame struct {
	Kind Kind
	// Op is the message's opcode (OpText or OpBinary) for Data.
	Op ws.OpCode
	// End: this piece ends the message (Data).
	End bool
	// Compressed: the message has RSV1 set (permessage-deflate); Payload
	// is compressed bytes then.
	Compressed bool
	Payload    []byte
	// Code and Reason of a Close; Code is 0 when the frame had no payload.
	Code   ws.StatusCode
	Reason string
}

// Error is a protocol violation by the client, with the close code the
// connection is to be failed with (RFC 6455 §7.4.1).
type Error struct {
	Code   ws.StatusCode
	Reason string
}

func (e *Error) Error() string { return "websocket: " + e.Reason }

func protoErr(reason string) *Error { return &Error{Code: ws.StatusProtocolError, Reason: reason} }

// Errors the reader returns besides protocol errors (1002).
var (
	ErrInvalidUTF8 = &Error{Code: ws.StatusInvalidFramePayloadData, Reason: "invalid UTF-8 in text message"}
	ErrTooBig      = &Error{Code: ws.StatusMessageTooBig, Reason: "message too big"}
)

// Reader parses the frames a client sends (masked, RFC 6455 §5) into
// message pieces and control frames. Control frames may come between the
// fragments of a message. The zero value with MaxMessage set is ready.
type Reader struct {
	// MaxMessage bounds a message's payload (compressed size for a
	// compressed message; the caller bounds what it inflates to).
	MaxMessage int64
	// Deflate: permessage-deflate was negotiated, so RSV1 may be set on
	// the first frame of a data message.
	Deflate bool

	src  sliceReader
	hbuf [ws.MaxHeaderSize - 2]byte

	h       ws.Header // the data frame being read, while inFrame
	left    int64     // its payload bytes not returned yet
	off     int       // mask offset of the next payload byte
	inFrame bool
	// The message in progress (msgOp 0: none).
	msgOp      ws.OpCode
	compressed bool
	msgLen     int64
	utf8       UTF8
}

// InMessage reports whether a data message has begun and not ended.
func (r *Reader) InMessage() bool { return r.msgOp != 0 }

// headerLen is the size of the header that starts b, or 0 if b does not
// hold its first two bytes yet.
func headerLen(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	n := 2
	switch b[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b[1]&0x80 != 0 {
		n += 4
	}
	return n
}

// Next parses the next unit from b. max bounds the payload of a Data
// piece (a longer frame comes out in several pieces) and of a ping or
// pong (which come out whole or not at all): the caller's credits. A
// close is not bounded. n is how many bytes of b were consumed (headers
// included); the caller drops them and keeps the rest for the next call.
func (r *Reader) Next(b []byte, max int) (f Frame, n int, err error) {
	for {
		if r.inFrame {
			if r.left > 0 && len(b) == n {
				return Frame{Kind: NeedMore}, n, nil
			}
			if r.left > 0 && max <= 0 {
				return Frame{Kind: Blocked}, n, nil
			}
			k := int(min(r.left, int64(len(b)-n), int64(max)))
			p := b[n : n+k]
			ws.Cipher(p, r.h.Mask, r.off)
			r.off += k
			r.left -= int64(k)
			n += k
			f = Frame{Kind: Data, Op: r.msgOp, Compressed: r.compressed, Payload: p}
			if r.left == 0 {
				r.inFrame = false
				f.End = r.h.Fin
			}
			if r.msgOp == ws.OpText && !r.compressed {
				if !r.utf8.Write(p) || f.End && !r.utf8.Done() {
					return Frame{}, n, ErrInvalidUTF8
				}
			}
			if f.End {
				r.msgOp, r.compressed, r.msgLen = 0, false, 0
			}
			return f, n, nil
		}
		hl := headerLen(b[n:])
		if hl == 0 || len(b)-n < hl {
			return Frame{Kind: NeedMore}, n, nil
		}
		r.src.b = b[n : n+hl]
		h, err := ws.ReadHeaderBuffer(&r.src, r.hbuf[:])
		r.src.b = nil
		if err != nil {
			return Frame{}, n, protoErr(err.Error())
		}
		st := ws.StateServerSide
		if r.msgOp != 0 {
			st |= ws.StateFragmented
		}
		if h.Rsv != 0 {
			// Only RSV1, only with permessage-deflate, only on the first
			// frame of a data message (RFC 7692 §6).
			if h.Rsv != 4 || !r.Deflate || h.OpCode.IsControl() || h.OpCode == ws.OpContinuation {
				return Frame{}, n, protoErr("reserved bits set")
			}
			st |= ws.StateExtended
		}
		if err := ws.CheckHeader(h, st); err != nil {
			return Frame{}, n, protoErr(err.Error())
		}
		if h.OpCode.IsControl() {
			if len(b)-n-hl < int(h.Length) {
				return Frame{Kind: NeedMore}, n, nil
			}
			if h.OpCode != ws.OpClose && int(h.Length) > max {
				return Frame{Kind: Blocked}, n, nil
			}
			p := b[n+hl : n+hl+int(h.Length)]
			ws.Cipher(p, h.Mask, 0)
			n += hl + len(p)
			f = Frame{Payload: p}
			switch h.OpCode {
			case ws.OpPing:
				f.Kind = Ping
			case ws.OpPong:
				f.Kind = Pong
			default:
				f.Kind = Close
				if err := parseClose(&f); err != nil {
					return Frame{}, n, err
				}
			}
			return f, n, nil
		}
		if r.MaxMessage > 0 && r.msgLen+h.Length > r.MaxMessage {
			return Frame{}, n, ErrTooBig
		}
		n += hl
		if h.OpCode != ws.OpContinuation {
			r.msgOp, r.compressed = h.OpCode, h.Rsv1()
			r.utf8 = UTF8{}
		}
		r.msgLen += h.Length
		r.h, r.left, r.off, r.inFrame = h, h.Length, 0, true
		if h.Length == 0 {
			// An empty frame: nothing to unmask, one piece anyway (it may
			// end the message).
			r.inFrame = false
			f = Frame{Kind: Data, Op: r.msgOp, Compressed: r.compressed, End: h.Fin, Payload: b[n:n]}
			if f.End {
				if r.msgOp == ws.OpText && !r.compressed && !r.utf8.Done() {
					return Frame{}, n, ErrInvalidUTF8
				}
				r.msgOp, r.compressed, r.msgLen = 0, false, 0
			}
			return f, n, nil
		}
	}
}

// parseClose checks a close frame's payload (RFC 6455 §5.5.1, §7.4).
func parseClose(f *Frame) error {
	p := f.Payload
	switch {
	case len(p) == 0:
		return nil
	case len(p) == 1:
		return protoErr("close frame payload of 1 byte")
	}
	f.Code = ws.StatusCode(uint16(p[0])<<8 | uint16(p[1]))
	f.Reason = string(p[2:])
	if !utf8.ValidString(f.Reason) {
		return &Error{Code: ws.StatusInvalidFramePayloadData, Reason: "invalid UTF-8 in close reason"}
	}
	if err := ws.CheckCloseFrameData(f.Code, f.Reason); err != nil || f.Code > 4999 {
		return protoErr("invalid close code")
	}
	return nil
}

// sliceReader is the io.Reader ws.ReadHeaderBuffer reads a header from:
// the header's bytes, already known to be complete. It lives in the
// Reader so that passing it costs no allocation.
type sliceReader struct{ b []byte }

func (s *sliceReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}
