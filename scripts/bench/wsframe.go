package main

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/gobwas/ws"
)

// The WebSocket client of the load tool: the worker's event loop writes a
// handshake on a raw socket, then decodes the frames the target sends (never
// masked) as their bytes arrive, in whatever pieces the socket gives them.
// Of every data message it keeps only the first line (what our numbered
// messages carry); the rest of the payload is skipped without a copy, so
// 10,000 connections cost a few hundred bytes each. Frame headers are
// decoded by github.com/gobwas/ws; the frames the client sends (pong, close)
// are masked, as RFC 6455 requires of a client.

// wsKey is the Sec-WebSocket-Key of every handshake: the server only has to
// answer it, not check that it is fresh, and one key means one expected
// Sec-WebSocket-Accept to compare with instead of a SHA-1 per open.
const wsKey = "cHVzaHBpbi1iZW5jaC0xNg==" // "pushpin-bench-16": 16 bytes, as RFC 6455 requires

// wsAccept is the Sec-WebSocket-Accept a server answers to key.
func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

var wsKeyAccept = []byte(wsAccept(wsKey))

// wsHandshake is the upgrade request for path.
func wsHandshake(path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + wsKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
}

var (
	errWSAccept   = errors.New("101 without the right Sec-WebSocket-Accept")
	errWSFrame    = errors.New("bad WebSocket frame")
	errWSClosed   = errors.New("closed by the target with a close frame")
	errWSTooLarge = errors.New("WebSocket message over 16 MiB")
)

// checkUpgrade checks a 101 response head: Upgrade: websocket and the
// accept value of wsKey.
func checkUpgrade(head []byte) error {
	var upgrade, accept bool
	_, rest, _ := bytes.Cut(head, []byte("\r\n"))
	for len(rest) > 0 {
		var h []byte
		h, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			continue
		}
		name, value = bytes.TrimSpace(name), bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("upgrade")):
			upgrade = bytes.EqualFold(value, []byte("websocket"))
		case bytes.EqualFold(name, []byte("sec-websocket-accept")):
			accept = bytes.Equal(value, wsKeyAccept)
		}
	}
	if !upgrade || !accept {
		return errWSAccept
	}
	return nil
}

// wsSink receives what a wsReader decodes.
type wsSink interface {
	// bodyLine is a data message's first line (up to the first "\n",
	// without it), or nothing for a message whose first line exceeds lineMax.
	bodyLine(line []byte)
	// wsPing is a ping's payload, to be answered with a pong.
	wsPing(payload []byte)
	// wsClose is the target's close frame (code 1005: none given).
	wsClose(code ws.StatusCode, reason []byte)
}

// wsMaxMessage bounds a message's total size: the targets split nothing
// this large, so more is a framing error rather than data.
const wsMaxMessage = 16 << 20

// wsReader is the frame decoder of one connection.
type wsReader struct {
	hdr      [ws.MaxHeaderSize]byte // a header split across reads
	hn       uint8                  // bytes in hdr
	inFrame  bool                   // reading a frame's payload
	op       ws.OpCode              // current frame
	fin      bool                   // current frame ends its message
	msgOp    ws.OpCode              // data message in progress (0: none)
	rem      int64                  // payload left in the current frame
	msgLen   int64                  // of the data message in progress
	ctl      [125]byte              // a control frame's payload
	cn       uint8
	lineLen  uint8
	lineDone bool // the first "\n" of the message was seen
	overflow bool // the first line exceeds lineMax
	closed   bool
	line     [lineMax]byte
	br       bytes.Reader // for ws.ReadHeaderBuffer, reset per header
	hbuf     [ws.MaxHeaderSize - 2]byte
}

// wsHeaderLen is the size of a header from its first two bytes.
func wsHeaderLen(b1 byte) int {
	n := 2
	if b1&0x80 != 0 {
		n += 4
	}
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	return n
}

// feed decodes the next bytes. It returns errWSClosed after a close frame
// (bytes after it are ignored), or a framing error.
func (r *wsReader) feed(b []byte, sink wsSink) error {
	for len(b) > 0 {
		if r.closed {
			return errWSClosed
		}
		if !r.inFrame {
			n, err := r.header(b)
			if err != nil {
				return err
			}
			b = b[n:]
			if !r.inFrame || r.rem > 0 {
				continue
			}
			// An empty payload ends its frame at once.
		}
		n := int(min(r.rem, int64(len(b))))
		r.payload(b[:n])
		b = b[n:]
		r.rem -= int64(n)
		if r.rem == 0 {
			if err := r.endFrame(sink); err != nil {
				return err
			}
		}
	}
	if r.closed {
		return errWSClosed
	}
	return nil
}

// header takes header bytes from b; once the header is whole it starts the
// frame. It returns how many bytes of b it used.
func (r *wsReader) header(b []byte) (int, error) {
	var hb []byte
	used := 0
	if r.hn == 0 && len(b) >= 2 && len(b) >= wsHeaderLen(b[1]) {
		used = wsHeaderLen(b[1]) // whole in b: no copy
		hb = b[:used]
	} else {
		want := ws.MaxHeaderSize
		switch {
		case r.hn >= 2:
			want = wsHeaderLen(r.hdr[1])
		case r.hn == 1:
			want = wsHeaderLen(b[0])
		case len(b) >= 2:
			want = wsHeaderLen(b[1])
		}
		used = min(want-int(r.hn), len(b))
		copy(r.hdr[r.hn:], b[:used])
		r.hn += uint8(used)
		if int(r.hn) < 2 || int(r.hn) < wsHeaderLen(r.hdr[1]) {
			return used, nil
		}
		hb = r.hdr[:r.hn]
		r.hn = 0
	}
	r.br.Reset(hb)
	h, err := ws.ReadHeaderBuffer(&r.br, r.hbuf[:])
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errWSFrame, err)
	}
	return used, r.start(h)
}

// start checks a frame header against the state and begins its payload.
func (r *wsReader) start(h ws.Header) error {
	switch {
	case h.Masked:
		return fmt.Errorf("%w: masked frame from the server", errWSFrame)
	case h.Rsv != 0:
		return fmt.Errorf("%w: RSV bits %d without an extension", errWSFrame, h.Rsv)
	case h.OpCode.IsReserved():
		return fmt.Errorf("%w: reserved opcode %d", errWSFrame, h.OpCode)
	case h.OpCode.IsControl() && (!h.Fin || h.Length > 125):
		return fmt.Errorf("%w: control frame fragmented or over 125 bytes", errWSFrame)
	case h.OpCode == ws.OpContinuation && r.msgOp == 0:
		return fmt.Errorf("%w: continuation without a message", errWSFrame)
	case h.OpCode.IsData() && h.OpCode != ws.OpContinuation && r.msgOp != 0:
		return fmt.Errorf("%w: new message inside a fragmented one", errWSFrame)
	}
	if h.OpCode.IsData() {
		if h.OpCode != ws.OpContinuation {
			r.msgOp, r.msgLen = h.OpCode, 0
			r.lineLen, r.lineDone, r.overflow = 0, false, false
		}
		if r.msgLen += h.Length; r.msgLen > wsMaxMessage {
			return errWSTooLarge
		}
	}
	r.op, r.fin, r.rem, r.cn, r.inFrame = h.OpCode, h.Fin, h.Length, 0, true
	return nil
}

// payload keeps what the frame's kind needs of b: a control frame whole,
// a data message up to its first "\n".
func (r *wsReader) payload(b []byte) {
	if r.op.IsControl() {
		r.cn += uint8(copy(r.ctl[r.cn:], b))
		return
	}
	if r.lineDone || r.overflow || len(b) == 0 {
		return
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b, r.lineDone = b[:i], true
	}
	if int(r.lineLen)+len(b) > lineMax {
		r.overflow = true
		return
	}
	r.lineLen += uint8(copy(r.line[r.lineLen:], b))
}

// endFrame acts on a complete frame.
func (r *wsReader) endFrame(sink wsSink) error {
	r.inFrame = false
	switch r.op {
	case ws.OpPing:
		sink.wsPing(r.ctl[:r.cn])
	case ws.OpPong:
	case ws.OpClose:
		if r.cn == 1 {
			return fmt.Errorf("%w: close payload of 1 byte", errWSFrame)
		}
		code, reason := ws.StatusNoStatusRcvd, r.ctl[:0]
		if r.cn >= 2 {
			code, reason = ws.StatusCode(binary.BigEndian.Uint16(r.ctl[:2])), r.ctl[2:r.cn]
		}
		r.closed = true
		sink.wsClose(code, reason)
	default:
		if r.fin {
			r.msgOp = 0
			if !r.overflow {
				sink.bodyLine(r.line[:r.lineLen])
			}
		}
	}
	return nil
}

// wsClientFrame is a masked client frame of op with payload p, as one
// write's bytes.
func wsClientFrame(op ws.OpCode, p []byte) []byte {
	f := ws.MaskFrameInPlace(ws.NewFrame(op, true, append([]byte(nil), p...)))
	b, err := ws.CompileFrame(f)
	if err != nil { // only for payloads beyond int64
		panic(err)
	}
	return b
}

// wsCloseFrame is a masked close frame with code (none if 0).
func wsCloseFrame(code ws.StatusCode) []byte {
	if code == 0 {
		return wsClientFrame(ws.OpClose, nil)
	}
	return wsClientFrame(ws.OpClose, ws.NewCloseFrameBody(code, ""))
}
