package connmgr

import (
	"crypto/sha1"
	"encoding/base64"
	"strconv"
	"strings"
	"sync"

	"github.com/gobwas/ws"

	"github.com/pushpin-go/pushpin/connmgr/internal/http1"
	"github.com/pushpin-go/pushpin/connmgr/internal/wsframe"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// A WebSocket connection is an exchange whose request was an upgrade,
// carried as one zws session (zhttp.md §7) exactly as condure carries it:
// the request packet (ws:// URI, every handshake header, our credits, no
// `stream`), the server's accept (data packet, code 101) or rejection
// (error `rejected`), then messages both ways as data packets (more:true on
// all but the last piece of a message), ping/pong/close packets, credits
// counting message payload bytes. The exchange's fields keep their HTTP
// meaning: credits are what the server lets us send it, grant what we let
// it send us (returned once written to the client).

// wsSession is the WebSocket state of an exchange.
type wsSession struct {
	accept string // Sec-WebSocket-Accept, until the 101 is written
	defl   *wsDeflate
	rd     wsframe.Reader
	open   bool // 101 written: frames flow
	// blocked: client input waits for the server (credits, a handoff, or
	// its first packet); nothing more is read meanwhile (back-pressure).
	blocked bool
	// outMsg: a server message is partly written (continuation next).
	outMsg    bool
	gotClose  bool // the client's close frame came (and went to the server)
	sentClose bool // a close frame was written to the client
	// kept counts frames put in kept output since it was last empty
	// (--messages-max).
	kept int32
}

// wsGUID is RFC 6455's handshake constant.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// wsOutSlack: client input is not read while more than the server's
// window plus this is waiting to be written, so pongs we answer with
// ourselves cannot pile up behind a client that does not read.
const wsOutSlack = 4096

func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// startWebSocket checks the handshake (RFC 6455 §4.2.1, as condure does)
// and opens the zws session.
func (c *conn) startWebSocket(req *http1.Request) {
	if req.HasBody() {
		c.refuse(req.Minor, 400, "Bad Request", "WebSocket request with a body.\n")
		return
	}
	if v := req.Headers.Get("Sec-WebSocket-Version"); strings.TrimSpace(v) != "13" {
		const body = "Unsupported WebSocket version.\n"
		b := []byte("HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nContent-Type: text/plain\r\nContent-Length: " +
			strconv.Itoa(len(body)) + "\r\nConnection: close\r\n\r\n" + body)
		c.sendAndClose(b)
		return
	}
	key := strings.TrimSpace(req.Headers.Get("Sec-WebSocket-Key"))
	if key == "" {
		c.refuse(req.Minor, 400, "Bad Request", "WebSocket request without Sec-WebSocket-Key.\n")
		return
	}
	w := &wsSession{accept: wsAccept(key)}
	w.rd.MaxMessage = c.s.cfg.WSMaxMessage
	if c.s.cfg.Compression {
		w.defl = negotiateDeflate(req.Headers)
		w.rd.Deflate = w.defl != nil
	}
	c.startExchange(req, w)
}

// sendAndClose writes b and closes the connection once it is out.
func (c *conn) sendAndClose(b []byte) {
	if _, err := c.send([][]byte{b}); err != nil {
		c.close()
		return
	}
	c.lingerClose()
}

// wsPacket applies a server packet to a WebSocket exchange.
func (x *exchange) wsPacket(d *delivery) outcome {
	ss, p, w := x.ss, d.p, x.ws
	switch p.Type {
	case zhttp.Cancel, zhttp.Error:
		x.s.log.Debug().Str("id", ss.id).Str("type", string(p.Type)).Str("condition", p.Condition).Msg("server ended session")
		if !w.open {
			if p.Type == zhttp.Error && p.Condition == "rejected" {
				return x.wsPlainResponse(p)
			}
			x.c.refuse(x.minor, 502, "Bad Gateway", "Bad Gateway.\n")
			return linger
		}
		return abort
	}
	if d.hasSeq && d.seq != x.inSeq {
		x.s.log.Warn().Str("id", ss.id).Int64("seq", d.seq).Int64("expected", x.inSeq).Msg("bad seq from server")
		x.cancel()
		return abort
	}
	x.inSeq++
	ss.retarget(p.From, p.Ext.Multi)
	if p.HasCredits {
		x.credits += p.Credits
	}
	res := goOn
	switch p.Type {
	case zhttp.HandoffStart:
		x.s.proceed(ss)
		return goOn
	case zhttp.Data:
		if !w.open {
			res = x.wsOpen(p)
		} else {
			res = x.wsWrite(d)
		}
	case zhttp.Ping, zhttp.Pong:
		res = x.wsControl(p)
	case zhttp.Close:
		res = x.wsServerClose(p)
	}
	if res != goOn {
		return res
	}
	x.returnCredits()
	return x.wsPump()
}

// wsDropped are the response headers condure leaves out of a 101 (and a
// rejection) and writes itself.
func wsDropped(name string) bool {
	return strings.EqualFold(name, "Upgrade") || strings.EqualFold(name, "Connection") ||
		strings.EqualFold(name, "Sec-WebSocket-Accept") || strings.EqualFold(name, "Sec-WebSocket-Extensions") ||
		strings.EqualFold(name, "Content-Length") || strings.EqualFold(name, "Transfer-Encoding")
}

func appendHeaders(dst []byte, hdrs zhttp.Headers) []byte {
	for _, h := range hdrs {
		if wsDropped(h.Name) {
			continue
		}
		dst = appendClean(dst, h.Name)
		dst = append(dst, ": "...)
		dst = appendClean(dst, h.Value)
		dst = append(dst, "\r\n"...)
	}
	return dst
}

// appendClean drops CR and LF: a server-supplied header cannot split the
// response.
func appendClean(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if ch := s[i]; ch != '\r' && ch != '\n' {
			dst = append(dst, ch)
		}
	}
	return dst
}

// wsOpen handles the server's first data packet: a 101 accepts (our 101
// carries its headers but our own Upgrade, Connection, accept key and
// extension), anything else is written as a plain response.
func (x *exchange) wsOpen(p *zhttp.Packet) outcome {
	c, w := x.c, x.ws
	if !p.HasCredits || p.Credits == 0 {
		// As condure: Pushpin's proxy sends no credits with its accept;
		// assume our buffer size.
		x.credits += int64(x.s.cfg.BufferSize)
	}
	if p.Code != 101 {
		return x.wsPlainResponse(p)
	}
	reason := p.Reason
	if reason == "" {
		reason = "Switching Protocols"
	}
	b := make([]byte, 0, 256)
	b = append(b, "HTTP/1.1 101 "...)
	b = appendClean(b, reason)
	b = append(b, "\r\n"...)
	b = appendHeaders(b, p.Headers)
	b = append(b, "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	b = append(b, w.accept...)
	b = append(b, "\r\n"...)
	if w.defl != nil {
		b = append(b, "Sec-WebSocket-Extensions: "...)
		b = append(b, w.defl.response()...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	if _, err := c.send([][]byte{b}); err != nil {
		x.cancel()
		return abort
	}
	w.open, w.accept = true, ""
	x.started, x.req = true, nil
	c.touch()
	x.s.log.Debug().Str("id", x.ss.id).Msg("websocket accepted")
	return goOn
}

// wsPlainResponse writes a server's refusal (error `rejected`, or a first
// data packet other than 101) as an HTTP response with its code, reason,
// headers and body, then closes, as condure does.
func (x *exchange) wsPlainResponse(p *zhttp.Packet) outcome {
	code := p.Code
	if code < 200 || code > 999 {
		code = 502
	}
	b := make([]byte, 0, 256+len(p.Body))
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, code, 10)
	b = append(b, ' ')
	b = appendClean(b, p.Reason)
	b = append(b, "\r\n"...)
	b = appendHeaders(b, p.Headers)
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(p.Body)), 10)
	b = append(b, "\r\nConnection: close\r\n\r\n"...)
	b = append(b, p.Body...)
	x.started = true
	if _, err := x.c.send([][]byte{b}); err != nil {
		return abort
	}
	return linger
}

// wsWire is a data packet with a list-form id framed once for every
// WebSocket session it goes to that writes it as a new, uncompressed
// message: header and payload in one buffer, built by the first session
// that needs it.
type wsWire struct {
	once  sync.Once
	frame []byte
}

func (ww *wsWire) get(p *zhttp.Packet) []byte {
	ww.once.Do(func() {
		b := make([]byte, 0, wsframe.MaxHeaderSize+len(p.Body))
		b = wsframe.AppendHeader(b, !p.More, false, dataOp(p, false), len(p.Body))
		b = append(b, p.Body...)
		ww.frame = b
	})
	return ww.frame
}

func dataOp(p *zhttp.Packet, continuation bool) ws.OpCode {
	switch {
	case continuation:
		return ws.OpContinuation
	case p.ContentType == "binary":
		return ws.OpBinary
	}
	return ws.OpText
}

// wsWrite writes a server data packet to the client as one frame (a
// message's first frame carries its type; later ones are continuations)
// within the credits we granted.
func (x *exchange) wsWrite(d *delivery) outcome {
	p, w := d.p, x.ws
	n := int64(len(p.Body))
	if w.sentClose {
		return goOn // as condure: nothing goes out after our close
	}
	if n > x.grant {
		x.s.log.Warn().Str("id", x.ss.id).Int64("body", n).Int64("credits", x.grant).Msg("server exceeded credits")
		x.cancel()
		return abort
	}
	x.grant -= n
	fin := !p.More
	if w.defl != nil {
		return x.wsWriteCompressed(p)
	}
	var all bool
	var err error
	if !w.outMsg && d.ws != nil {
		all, err = x.c.send([][]byte{d.ws.get(p)})
	} else {
		var hb [wsframe.MaxHeaderSize]byte
		all, err = x.c.send([][]byte{wsframe.AppendHeader(hb[:0], fin, false, dataOp(p, w.outMsg), len(p.Body)), p.Body})
	}
	w.outMsg = !fin
	return x.wsWritten(all, err, n)
}

// wsWritten accounts for a frame handed to the client socket: its
// credits come back once all of it is written (now, or when the kept
// rest is), and at most --messages-max frames may wait in kept output.
func (x *exchange) wsWritten(all bool, err error, n int64) outcome {
	if err != nil {
		x.s.log.Debug().Str("id", x.ss.id).Err(err).Msg("client write failed")
		x.cancel()
		return abort
	}
	if all {
		x.owed += n
		return goOn
	}
	x.unflushed += n
	x.ws.kept++
	if int(x.ws.kept) > x.s.cfg.MessagesMax {
		x.s.log.Debug().Str("id", x.ss.id).Int("max", x.s.cfg.MessagesMax).Msg("too many unwritten messages")
		x.cancel()
		return abort
	}
	return goOn
}

// wsControl writes a server ping or pong; its payload counts against
// credits like a message's.
func (x *exchange) wsControl(p *zhttp.Packet) outcome {
	w := x.ws
	n := int64(len(p.Body))
	if !w.open || w.sentClose {
		return goOn
	}
	if n > x.grant {
		x.s.log.Warn().Str("id", x.ss.id).Int64("body", n).Int64("credits", x.grant).Msg("server exceeded credits")
		x.cancel()
		return abort
	}
	x.grant -= n
	op := ws.OpPing
	if p.Type == zhttp.Pong {
		op = ws.OpPong
	}
	body := p.Body[:min(len(p.Body), ws.MaxControlFramePayloadSize)]
	var hb [wsframe.MaxHeaderSize]byte
	all, err := x.c.send([][]byte{wsframe.AppendHeader(hb[:0], true, false, op, len(body)), body})
	return x.wsWritten(all, err, n)
}

// wsServerClose writes the server's close (code and reason; 1000 when it
// gave none, as condure). Once both sides closed, the connection closes.
func (x *exchange) wsServerClose(p *zhttp.Packet) outcome {
	w := x.ws
	if !w.open || w.sentClose {
		return goOn
	}
	code := ws.StatusCode(1000)
	if p.HasCode && p.Code > 0 && p.Code < 65536 {
		code = ws.StatusCode(p.Code)
	}
	if err := x.wsSendClose(code, string(p.Body)); err != nil {
		x.cancel()
		return abort
	}
	if w.gotClose {
		return linger
	}
	return goOn
}

func (x *exchange) wsSendClose(code ws.StatusCode, reason string) error {
	var pb [ws.MaxControlFramePayloadSize]byte
	var fb [wsframe.MaxHeaderSize + ws.MaxControlFramePayloadSize]byte
	payload := wsframe.ClosePayload(pb[:0], code, reason)
	frame := append(wsframe.AppendHeader(fb[:0], true, false, ws.OpClose, len(payload)), payload...)
	x.ws.sentClose = true
	_, err := x.c.send([][]byte{frame})
	return err
}
