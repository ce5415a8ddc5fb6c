package zurl

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"time"

	"github.com/gobwas/ws"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// A zws session (zhttp.md §7) is a real WebSocket to the backend. Its
// worker goroutine (run → runWS) dials, makes the handshake, sends the 101
// and then reads the backend: each frame goes to the requester as packets
// within the requester's credits. While credits are short it does not read
// the socket, so a fast backend is held back by TCP rather than buffered.
// Packets from the requester are queued by the ROUTER goroutine
// (wsDeliver, wswrite.go) and written by a writer goroutine that runs while
// the queue is not empty, granting the requester credits for what it wrote.
// Framing is gobwas/ws, which works on bytes: a frame's payload is read in
// pieces as credits allow (a 1 MB message needs no 1 MB buffer, and no
// frame is too large, where zurl fails frames over buffer_size).

// wsCloseWait bounds the wait for the backend's close frame after the
// requester's close was written to it.
const wsCloseWait = 10 * time.Second

// wsWindow is the message bytes the requester may send ahead of our
// writes: buffer_size, plus one byte. zurl grants exactly buffer_size
// (200000), the same window Pushpin's proxy grants the connection manager;
// with both equal the proxy's credits toward zurl run out exactly as the
// last frame of a burst ends, and Pushpin 1.36's proxy then never looks at
// its input again (it does so only when a frame completes or a packet
// arrives): a client message over 200000 bytes stalls for good. One byte
// more breaks the tie.
func (s *Server) wsWindow() int64 { return int64(s.cfg.BufferSize) + 1 }

// maxControl is RFC 6455's limit on a control frame's payload.
const maxControl = 125

var errProtocol = errors.New("zurl: websocket protocol error from the backend")

// wsState is a zws session's WebSocket side. Fields below conn are guarded
// by session.mu.
type wsState struct {
	conn net.Conn // set once connected, before any packet can be delivered

	queue        []wsFrame // frames from the requester waiting for the writer
	queued       int64     // their payload bytes (bounded by the credits we granted)
	writing      bool      // a writer goroutine is running
	sendingMsg   bool      // the requester's message continues in the next data packet
	closeQueued  bool      // the requester sent close: nothing more may follow
	closeWritten bool      // our close frame went to the backend
	peerClosed   bool      // the backend's close frame was relayed
}

// wsFrame is one frame to write to the backend.
type wsFrame struct {
	op      ws.OpCode
	fin     bool
	payload []byte
}

// runWS is a zws session's worker: connect, then relay the backend.
func (ss *session) runWS() {
	conn, err := ss.wsDial(ss.ctx)
	if err != nil {
		ss.failed(err, "websocket connect failed")
		return
	}
	defer conn.Close()
	br, head, err := ss.wsHandshake(conn)
	if err != nil {
		var rej *rejectedError
		if errors.As(err, &rej) && ss.ctx.Err() == nil {
			ss.srv.log.Info().Str("id", ss.key.id).Str("uri", ss.first.URI).Int("code", rej.code).Msg("websocket rejected")
			ss.send(&zhttp.Packet{Type: zhttp.Error, Condition: "rejected", Code: int64(rej.code), HasCode: true,
				Reason: rej.reason, Headers: rej.headers, HasHeaders: true, Body: rej.body}, true)
			return
		}
		ss.failed(err, "websocket handshake failed")
		return
	}
	ss.mu.Lock()
	ss.ws.conn = conn
	ok := ss.sendLocked(&zhttp.Packet{HasCode: true, Code: int64(head.code), Reason: head.reason,
		HasHeaders: true, Headers: head.headers, Credits: ss.srv.wsWindow(), HasCredits: true}, false)
	ss.mu.Unlock()
	if ok {
		ss.wsRead(br)
	}
}

// wsRead relays the backend's frames until its close, an error or the
// end of the session.
func (ss *session) wsRead(br *bufio.Reader) {
	var ctl [maxControl]byte
	var msgBinary bool // the type of the message a continuation belongs to
	for {
		h, err := ws.ReadHeader(br)
		if err != nil {
			ss.wsReadFailed(err)
			return
		}
		switch {
		case h.OpCode.IsControl():
			if h.Length > maxControl || !h.Fin {
				ss.wsReadFailed(errProtocol)
				return
			}
			b := ctl[:h.Length]
			if _, err := io.ReadFull(br, b); err != nil {
				ss.wsReadFailed(err)
				return
			}
			if h.Masked {
				ws.Cipher(b, h.Mask, 0)
			}
			switch h.OpCode {
			case ws.OpClose:
				ss.wsPeerClose(b)
				return
			case ws.OpPing, ws.OpPong:
				typ := zhttp.Ping
				if h.OpCode == ws.OpPong {
					typ = zhttp.Pong
				}
				// Ping and pong wait for credits whole, as Pushpin's.
				if ss.waitCreditsFor(len(b)) < 0 {
					return
				}
				if !ss.spendAndSend(&zhttp.Packet{Type: typ, Body: b}, len(b), false) {
					return
				}
			}
		case h.OpCode == ws.OpText || h.OpCode == ws.OpBinary || h.OpCode == ws.OpContinuation:
			if h.OpCode != ws.OpContinuation {
				msgBinary = h.OpCode == ws.OpBinary
			}
			if !ss.wsRelayData(br, h, msgBinary) {
				return
			}
		default:
			// Unknown opcodes are skipped, as zurl does.
			if _, err := io.CopyN(io.Discard, br, h.Length); err != nil {
				ss.wsReadFailed(err)
				return
			}
		}
	}
}

// wsRelayData sends a data frame's payload to the requester. A frame
// that fits the requester's whole window (the credits of its first packet,
// at most buffer_size) goes as one packet once that many credits are
// there, as zurl sends every frame: Pushpin's proxy relays a message split
// into several packets, but stalls when one ends exactly as its client's
// credits run out (it looks for the next frame only when a frame completes
// or a packet arrives), so packet boundaries zurl would not make are
// avoided. A larger frame, which zurl refuses (frame-too-large), goes in
// packets of what the credits allow, more:true on all but the message's
// last. An empty frame needs no credits.
func (ss *session) wsRelayData(br *bufio.Reader, h ws.Header, binary bool) bool {
	ct := ""
	if binary {
		ct = "binary" // text goes without content-type, as zurl sends it
	}
	if h.Length == 0 {
		return ss.send(&zhttp.Packet{ContentType: ct, Body: []byte{}, More: !h.Fin}, false)
	}
	window := min(int64(ss.srv.cfg.BufferSize), max(ss.first.Credits, 1))
	var buf []byte
	if size := min(h.Length, window); size <= int64(ss.srv.readBufSize) {
		bp := ss.srv.bufs.Get().(*[]byte) // only while a payload is in flight: idle sockets pin no buffer
		defer ss.srv.bufs.Put(bp)
		buf = (*bp)[:size]
	} else {
		buf = make([]byte, size) // up to buffer_size, while the frame is relayed
	}
	var off int64
	for off < h.Length {
		var n int
		if h.Length <= window {
			n = ss.waitCreditsFor(int(h.Length))
		} else {
			n = ss.waitCredits(int(min(int64(len(buf)), h.Length-off)))
		}
		if n < 0 {
			return false
		}
		chunk := buf[:n]
		if _, err := io.ReadFull(br, chunk); err != nil {
			ss.wsReadFailed(err)
			return false
		}
		if h.Masked {
			ws.Cipher(chunk, h.Mask, int(off))
		}
		off += int64(n)
		if !ss.spendAndSend(&zhttp.Packet{ContentType: ct, Body: chunk, More: off < h.Length || !h.Fin}, n, false) {
			return false
		}
	}
	return true
}

// wsPeerClose relays the backend's close frame. After the requester's own
// close this ends the session; otherwise it waits for the requester's
// close to be written back (wswrite.go), as zurl does.
func (ss *session) wsPeerClose(b []byte) {
	p := &zhttp.Packet{Type: zhttp.Close}
	if len(b) >= 2 {
		p.Code, p.HasCode = int64(binary.BigEndian.Uint16(b)), true
		if len(b) > 2 {
			p.Body = b[2:]
		}
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.ws.peerClosed = true
	if ss.ws.closeWritten {
		ss.sendLocked(p, true)
		return
	}
	if !ss.sendLocked(p, false) {
		return
	}
	for !ss.ws.closeWritten && !ss.finished && ss.ctx.Err() == nil {
		ss.cond.Wait()
	}
}

// wsReadFailed ends the session on a read error: quietly when it was
// cancelled, with a close when our close was answered by a hang-up or
// nothing (wsCloseWait), else `undefined-condition`, as zurl reports a
// backend that vanished.
func (ss *session) wsReadFailed(err error) {
	if ss.ctx.Err() != nil {
		return
	}
	ss.mu.Lock()
	closing := ss.ws.closeWritten
	ss.mu.Unlock()
	if closing {
		ss.send(&zhttp.Packet{Type: zhttp.Close}, true)
		return
	}
	ss.srv.log.Info().Err(err).Str("id", ss.key.id).Str("uri", ss.first.URI).Msg("websocket read failed")
	ss.fail("undefined-condition")
}

// waitCreditsFor blocks until the requester can take n bytes at once;
// -1 once the session has ended.
func (ss *session) waitCreditsFor(n int) int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for ss.credits < int64(n) && !ss.finished && ss.ctx.Err() == nil {
		ss.cond.Wait()
	}
	if ss.finished || ss.ctx.Err() != nil {
		return -1
	}
	return n
}
