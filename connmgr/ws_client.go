package connmgr

import (
	"errors"

	"github.com/gobwas/ws"

	"github.com/pushpin-go/pushpin/connmgr/internal/wsframe"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// wsPump passes buffered client frames to the server within its credits,
// as condure does: message payload goes out as it arrives (a message
// longer than the credits or the buffer in several data packets, more:true
// on all but the last; each carries the message's content-type), pings and
// pongs as packets (their payload counts against credits too; a ping is
// answered here at once), the close as a close packet. Input that has to
// wait for credits stays in the buffer and nothing more is read (the
// client's TCP window closes): a slow server never makes us buffer more
// than one buffer per connection.
func (x *exchange) wsPump() outcome {
	c, w := x.c, x.ws
	w.blocked = false
	if !w.open {
		return goOn // frames wait for the accept
	}
	for !c.closed && !c.lingering {
		if w.gotClose {
			// Nothing a client sends after its close counts (RFC 6455 §5.5.1).
			c.data = c.data[len(c.data):]
			break
		}
		if w.defl != nil && w.defl.inflating() {
			res, done := x.wsInflate()
			if res != goOn {
				return res
			}
			if !done {
				w.blocked = true
				break
			}
			continue
		}
		if len(c.data) == 0 {
			break
		}
		if x.ss.to == "" || x.ss.handoff {
			w.blocked = true
			break
		}
		f, n, err := w.rd.Next(c.data, int(min(x.credits, 1<<30)))
		c.data = c.data[n:]
		if err != nil {
			return x.wsFail(err)
		}
		switch f.Kind {
		case wsframe.NeedMore:
			goto out
		case wsframe.Blocked:
			w.blocked = true
			goto out
		case wsframe.Data:
			if f.Compressed {
				if res := x.wsCollect(&f); res != goOn {
					return res
				}
				continue
			}
			if len(f.Payload) == 0 && !f.End {
				continue // condure does not send empty pieces
			}
			x.wsSend(&zhttp.Packet{ContentType: contentType(f.Op), Body: f.Payload, More: !f.End})
		case wsframe.Ping:
			// Answered at once (RFC 6455 §5.5.2), and passed on as condure does.
			var hb [wsframe.MaxHeaderSize]byte
			if _, err := c.send([][]byte{wsframe.AppendHeader(hb[:0], true, false, ws.OpPong, len(f.Payload)), f.Payload}); err != nil {
				x.cancel()
				return abort
			}
			x.wsSend(&zhttp.Packet{Type: zhttp.Ping, Body: f.Payload})
		case wsframe.Pong:
			x.wsSend(&zhttp.Packet{Type: zhttp.Pong, Body: f.Payload})
		case wsframe.Close:
			w.gotClose = true
			p := &zhttp.Packet{Type: zhttp.Close, Body: []byte(f.Reason)}
			if f.Code != 0 {
				p.Code, p.HasCode = int64(f.Code), true
			}
			x.s.send(x.ss, p)
			if w.sentClose {
				return linger // both sides closed
			}
		}
	}
out:
	if len(c.data) == 0 {
		c.release()
	}
	return goOn
}

// wsSend sends a client message piece, ping or pong and takes its payload
// off the credits.
func (x *exchange) wsSend(p *zhttp.Packet) {
	x.s.send(x.ss, p)
	x.credits -= int64(len(p.Body))
}

func contentType(op ws.OpCode) string {
	if op == ws.OpBinary {
		return "binary"
	}
	return "text"
}

// wsFail fails the connection for a client's protocol error (RFC 6455
// §7.1.7): a close frame with the code (1002, 1007, 1009), the TCP
// connection closed once it is written. The server gets a cancel, as
// condure sends for a connection it drops.
func (x *exchange) wsFail(err error) outcome {
	code, reason := ws.StatusProtocolError, err.Error()
	var we *wsframe.Error
	if errors.As(err, &we) {
		code, reason = we.Code, we.Reason
	}
	x.s.log.Debug().Str("id", x.ss.id).Int("code", int(code)).Str("reason", reason).Msg("failing websocket")
	x.cancel()
	if !x.ws.sentClose {
		if err := x.wsSendClose(code, reason); err != nil {
			return abort
		}
	}
	return linger
}

// wsWantRead says whether client input is wanted now (see wsPump).
func (x *exchange) wsWantRead() bool {
	c, w := x.c, x.ws
	switch {
	case c.buf != nil && len(c.data) == len(*c.buf):
		return false
	case !w.open:
		// Only to notice a disconnect: a client sends no frame before the 101.
		return len(c.data) == 0
	case w.blocked:
		return false
	case len(c.out) > x.s.cfg.BufferSize+wsOutSlack:
		return false
	}
	return true
}
