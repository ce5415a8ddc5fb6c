package zurl

import (
	"time"

	"github.com/gobwas/ws"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// wsDeliver queues a requester's data, ping, pong or close packet as a
// frame for the backend (ROUTER goroutine: never waits on the network).
// The requester sends at most the credits we granted (wsWindow in the
// 101, then what the writer has written), so the queue is bounded; beyond
// them the session is cancelled.
func (ss *session) wsDeliver(p *zhttp.Packet) {
	if p.Type != zhttp.Data && p.Type != zhttp.Ping && p.Type != zhttp.Pong && p.Type != zhttp.Close {
		return // credit and keep-alive are done with in deliver
	}
	ss.mu.Lock()
	w := ss.ws
	if ss.finished || w.conn == nil {
		ss.mu.Unlock()
		return // the requester cannot know our address before the 101
	}
	if w.closeQueued {
		// Nothing may follow a close; zurl answers bad-request.
		ss.srv.log.Info().Str("id", ss.key.id).Str("type", string(p.Type)).Msg("websocket packet after close, bad-request")
		ss.sendLocked(&zhttp.Packet{Type: zhttp.Error, Condition: "bad-request"}, true)
		ss.mu.Unlock()
		ss.cancel()
		return
	}
	f := wsFrame{fin: true, payload: p.Body}
	counted := len(p.Body)
	switch p.Type {
	case zhttp.Data:
		switch {
		case w.sendingMsg:
			f.op = ws.OpContinuation
		case p.ContentType == "binary":
			f.op = ws.OpBinary
		default:
			f.op = ws.OpText
		}
		f.fin = !p.More
		w.sendingMsg = p.More
	case zhttp.Ping, zhttp.Pong:
		f.op = ws.OpPing
		if p.Type == zhttp.Pong {
			f.op = ws.OpPong
		}
		if len(f.payload) > maxControl {
			f.payload = f.payload[:maxControl]
		}
	case zhttp.Close:
		f.op, counted, f.payload = ws.OpClose, 0, nil
		if p.HasCode {
			reason := p.Body
			if len(reason) > maxControl-2 {
				reason = reason[:maxControl-2]
			}
			f.payload = ws.NewCloseFrameBody(ws.StatusCode(p.Code), string(reason))
		}
		w.closeQueued = true
	}
	if w.queued+int64(counted) > ss.srv.wsWindow() {
		ss.srv.log.Warn().Str("id", ss.key.id).Msg("websocket data beyond credits, cancelling")
		ss.sendLocked(&zhttp.Packet{Type: zhttp.Cancel}, true)
		ss.mu.Unlock()
		ss.cancel()
		return
	}
	w.queue = append(w.queue, f)
	w.queued += int64(counted)
	start := !w.writing
	w.writing = true
	ss.mu.Unlock()
	if start {
		go ss.wsWrite()
	}
}

// appender is an io.Writer onto a slice (frame headers into the batch).
type appender struct{ b []byte }

func (a *appender) Write(p []byte) (int, error) { a.b = append(a.b, p...); return len(p), nil }

// wsWrite is the writer goroutine: it writes the queued frames in one
// batch per wake-up (masked, one write call), grants the requester credits
// for their payload, as zurl does per written frame, and exits once the
// queue is empty. A write error closes the connection, so the reader ends
// the session.
func (ss *session) wsWrite() {
	var out appender
	for {
		ss.mu.Lock()
		w := ss.ws
		q := w.queue
		if len(q) == 0 || ss.finished {
			w.queue, w.writing = nil, false
			ss.mu.Unlock()
			return
		}
		w.queue = nil
		conn := w.conn
		ss.mu.Unlock()

		out.b = out.b[:0]
		credits, closing := 0, false
		for _, f := range q {
			h := ws.Header{Fin: f.fin, OpCode: f.op, Masked: true, Mask: ws.NewMask(), Length: int64(len(f.payload))}
			_ = ws.WriteHeader(&out, h) // an appender does not fail
			start := len(out.b)
			out.b = append(out.b, f.payload...)
			ws.Cipher(out.b[start:], h.Mask, 0)
			if f.op == ws.OpClose {
				closing = true
			} else {
				credits += len(f.payload)
			}
		}
		_, err := conn.Write(out.b)
		if cap(out.b) > 64<<10 {
			out.b = nil // a burst's buffer is not kept for an idle socket
		}

		ss.mu.Lock()
		w.queued -= int64(credits)
		if err != nil {
			w.writing = false
			ss.mu.Unlock()
			conn.Close()
			return
		}
		if credits > 0 {
			ss.sendLocked(&zhttp.Packet{Type: zhttp.Credit, Credits: int64(credits), HasCredits: true}, false)
		}
		if closing {
			w.closeWritten = true
			if !w.peerClosed && ss.ctx.Err() == nil {
				// The backend has wsCloseWait to answer; set under mu,
				// so a cancel's deadline (set after it) always wins.
				d := ss.srv.timers.wsClose
				if d <= 0 {
					d = wsCloseWait
				}
				_ = conn.SetReadDeadline(time.Now().Add(d))
			}
			ss.cond.Broadcast()
		}
		ss.mu.Unlock()
	}
}
