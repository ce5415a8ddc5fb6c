package wsframe

import (
	"encoding/binary"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// MaxHeaderSize bounds a server frame's header (no mask).
const MaxHeaderSize = ws.MaxHeaderSize - 4

// AppendHeader appends the header of an unmasked (server) frame: what
// ws.WriteHeader writes for the same ws.Header, without an io.Writer, so a
// header can be built into a buffer the caller owns (or once for a frame
// many connections write).
func AppendHeader(dst []byte, fin, rsv1 bool, op ws.OpCode, length int) []byte {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	if rsv1 {
		b0 |= 0x40
	}
	switch {
	case length < 126:
		return append(dst, b0, byte(length))
	case length <= 0xffff:
		return binary.BigEndian.AppendUint16(append(dst, b0, 126), uint16(length))
	}
	return binary.BigEndian.AppendUint64(append(dst, b0, 127), uint64(length))
}

// ClosePayload appends a close frame's payload: the code and the reason,
// cut (on a UTF-8 boundary) to fit a control frame's 125 bytes. Code 0
// makes an empty payload.
func ClosePayload(dst []byte, code ws.StatusCode, reason string) []byte {
	if code == 0 {
		return dst
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	return append(dst, TruncateUTF8(reason, ws.MaxControlFramePayloadSize-2)...)
}

// TruncateUTF8 cuts s to at most n bytes without splitting a character.
func TruncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
