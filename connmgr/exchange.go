package connmgr

import (
	"time"

	"github.com/pushpin-go/pushpin/connmgr/internal/http1"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// exchange is one request/response on a connection, carried as one zhttp
// client session. It lives on the connection goroutine.
type exchange struct {
	c   *conn
	s   *Server
	req *http1.Request
	ss  *session

	dec      http1.BodyDecoder
	pending  []byte // decoded request body not yet sent (window of c.buf)
	credits  int64  // request body bytes the server accepts
	bodySent bool   // the final request body packet went out
	inSeq    int64
	owed     int64 // credits to return once a handoff completes

	started bool
	sent100 bool // "100 Continue" written (Expect: 100-continue)
	plan    http1.Plan
	written int64 // response body bytes written (FrameLength)

	// Readiness notifier: a goroutine that waits for the client socket to
	// become readable while this goroutine waits on the inbox.
	armCh   chan struct{}
	readyCh chan error
	armed   bool
}

type outcome int

const (
	goOn outcome = iota
	finished
	abort
)

// exchange runs one request and reports whether the connection persists.
func (c *conn) exchange(req *http1.Request) bool {
	s := c.s
	x := &exchange{c: c, s: s, req: req, ss: s.newSession(c), dec: http1.NewBodyDecoder(req)}
	x.bodySent = !req.HasBody()
	s.register(x.ss)
	defer func() {
		x.stopNotifier()
		s.endSession(x.ss)
	}()
	first := &zhttp.Packet{From: s.cfg.ID, ID: x.ss.id, Seq: 0, HasSeq: true, Ext: zhttp.Ext{Multi: true},
		Method: req.Method, URI: req.URI("http"), Headers: req.Headers, HasHeaders: true,
		More: req.HasBody(), Stream: true, Credits: int64(s.cfg.BufferSize), HasCredits: true,
		PeerAddress: c.peerAddr, PeerPort: c.peerPort}
	s.push.Send(first.AppendMessage(nil))
	s.log.Debug().Str("id", x.ss.id).Str("method", req.Method).Str("uri", first.URI).Msg("request")
	if x.pump() == abort {
		return false
	}
	for {
		x.arm()
		var res outcome
		select {
		case p := <-x.ss.inbox:
			res = x.onPacket(p)
		case err := <-x.readyCh:
			x.armed = false
			res = x.onReadable(err)
		case <-s.done:
			return false
		}
		switch res {
		case abort:
			return false
		case finished:
			// Persist only if the whole request body was read off the socket.
			return x.plan.KeepAlive && x.dec.Done()
		}
	}
}

// arm starts waiting for client input when it is wanted: more request
// body, or (body complete, nothing buffered) to notice a disconnect.
func (x *exchange) arm() {
	if x.armed || len(x.pending) > 0 {
		return
	}
	if x.dec.Done() && len(x.c.data) > 0 {
		return // a pipelined request is buffered: leave it for later
	}
	if !x.dec.Done() && len(x.c.data) > 0 && x.c.buf != nil && len(x.c.data) == len(*x.c.buf) {
		return
	}
	x.c.release()
	if x.armCh == nil {
		x.armCh, x.readyCh = make(chan struct{}), make(chan error, 1)
		go notifier(x.c, x.armCh, x.readyCh)
	}
	x.armCh <- struct{}{}
	x.armed = true
}

// notifier reports readability once per arm, holding no buffer.
func notifier(c *conn, arm <-chan struct{}, ready chan<- error) {
	for range arm {
		ready <- waitReadable(c.rc)
	}
}

// stopNotifier interrupts a pending wait (a past read deadline wakes it)
// and ends the notifier goroutine.
func (x *exchange) stopNotifier() {
	if x.armCh == nil {
		return
	}
	if x.armed {
		_ = x.c.nc.SetReadDeadline(time.Unix(1, 0))
		<-x.readyCh
		x.armed = false
		_ = x.c.nc.SetReadDeadline(time.Time{})
	}
	close(x.armCh)
}

// cancel tells the server the client is gone (when there is a server to
// tell). Packets already queued may name the server: look at them first.
func (x *exchange) cancel() {
	for drained := false; !drained; {
		select {
		case p := <-x.ss.inbox:
			if p != expirePacket && p.Type != zhttp.HandoffStart {
				x.ss.retarget(p.From, p.Ext.Multi)
			}
		default:
			drained = true
		}
	}
	x.s.send(x.ss, &zhttp.Packet{Type: zhttp.Cancel})
}

// onReadable reads what the client sent: request body, or the start of a
// pipelined request, or EOF (disconnect).
func (x *exchange) onReadable(err error) outcome {
	if err == nil {
		err = x.c.fill()
	}
	if err != nil {
		x.s.log.Debug().Str("id", x.ss.id).Err(err).Msg("client disconnected")
		x.cancel()
		return abort
	}
	return x.pump()
}

// pump decodes buffered request body and sends it within the server's
// credits. The final packet has no `more`; for a chunked body it is an
// empty packet after the last chunk, as condure does.
func (x *exchange) pump() outcome {
	for !x.bodySent {
		if len(x.pending) == 0 && !x.dec.Done() {
			data, n, err := x.dec.Decode(x.c.data)
			x.c.data = x.c.data[n:]
			if err != nil {
				x.s.log.Debug().Str("id", x.ss.id).Err(err).Msg("bad request body")
				x.cancel()
				if !x.started {
					x.c.writeError(x.req.Minor, 400, "Bad Request", "Bad Request.\n")
				}
				return abort
			}
			x.pending = data
			if n == 0 {
				return goOn // need more input
			}
			if len(data) == 0 && !x.dec.Done() {
				continue
			}
		}
		if x.ss.to == "" || x.ss.handoff {
			return goOn
		}
		if len(x.pending) > 0 {
			if x.credits <= 0 {
				return goOn
			}
			k := min(int64(len(x.pending)), x.credits)
			last := x.dec.Done() && k == int64(len(x.pending))
			if !x.s.send(x.ss, &zhttp.Packet{Body: x.pending[:k], More: !last}) {
				return goOn
			}
			x.credits -= k
			x.pending = x.pending[k:]
			x.bodySent = last
			continue
		}
		if x.dec.Done() {
			if x.s.send(x.ss, &zhttp.Packet{}) {
				x.bodySent = true
			}
			return goOn
		}
	}
	return goOn
}

func (x *exchange) onPacket(p *zhttp.Packet) outcome {
	ss := x.ss
	if p == expirePacket {
		x.s.log.Debug().Str("id", ss.id).Msg("session timed out")
		return abort
	}
	switch p.Type {
	case zhttp.Cancel, zhttp.Error:
		x.s.log.Debug().Str("id", ss.id).Str("type", string(p.Type)).Str("condition", p.Condition).Msg("server ended session")
		if !x.started {
			x.c.writeError(x.req.Minor, 502, "Bad Gateway", "Bad Gateway.\n")
		}
		return abort
	}
	if p.HasSeq && p.Seq != x.inSeq {
		x.s.log.Warn().Str("id", ss.id).Int64("seq", p.Seq).Int64("expected", x.inSeq).Msg("bad seq from server")
		x.cancel()
		return abort
	}
	x.inSeq++
	ss.retarget(p.From, p.Ext.Multi)
	if p.HasCredits {
		x.credits += p.Credits
	}
	if x.req.Expect100 && !x.sent100 && !x.started && p.Type != zhttp.Data {
		// As condure: the client may send the body once a server answered.
		x.sent100 = true
		if x.c.write([]byte("HTTP/1.1 100 Continue\r\n\r\n")) != nil {
			x.cancel()
			return abort
		}
	}
	switch p.Type {
	case zhttp.HandoffStart:
		x.s.proceed(ss)
		return goOn
	case zhttp.Data:
		if res := x.writeResponse(p); res != goOn {
			return res
		}
	}
	if x.owed > 0 && x.s.send(ss, &zhttp.Packet{Type: zhttp.Credit, Credits: x.owed, HasCredits: true}) {
		x.owed = 0
	}
	return x.pump()
}

// writeResponse writes a response data packet to the client with condure's
// framing and returns the credits for the body bytes written.
func (x *exchange) writeResponse(p *zhttp.Packet) outcome {
	var bufs [][]byte
	var scratch *[]byte
	if !x.started {
		if !p.HasCode {
			x.s.log.Warn().Str("id", x.ss.id).Msg("first response packet without code")
			x.cancel()
			x.c.writeError(x.req.Minor, 502, "Bad Gateway", "Bad Gateway.\n")
			return abort
		}
		x.plan = http1.PlanResponse(x.req, int(p.Code), p.Headers, p.More, len(p.Body))
		scratch = x.s.bufs.Get().(*[]byte)
		head := http1.AppendHead((*scratch)[:0], x.req, int(p.Code), p.Reason, p.Headers, x.plan)
		bufs = append(bufs, head)
		x.started = true
	}
	body := p.Body
	if x.plan.NoBody {
		body = nil
	}
	switch x.plan.Framing {
	case http1.FrameLength:
		if left := x.plan.Length - x.written; int64(len(body)) > left {
			body = body[:left]
		}
		x.written += int64(len(body))
		if len(body) > 0 {
			bufs = append(bufs, body)
		}
	case http1.FrameChunked:
		if len(body) > 0 {
			bufs = append(bufs, http1.AppendChunkHeader(nil, len(body)), body, http1.CRLF)
		}
		if !p.More && !x.plan.NoBody {
			bufs = append(bufs, http1.LastChunk)
		}
	case http1.FrameClose:
		if len(body) > 0 {
			bufs = append(bufs, body)
		}
	}
	var err error
	if len(bufs) > 0 {
		err = x.c.write(bufs...)
	}
	if scratch != nil {
		x.s.bufs.Put(scratch)
	}
	if err != nil {
		x.s.log.Debug().Str("id", x.ss.id).Err(err).Msg("client write failed")
		x.cancel()
		return abort
	}
	if !p.More {
		if x.plan.Framing == http1.FrameClose {
			return abort // close-delimited: closing ends the body
		}
		return finished
	}
	if n := int64(len(p.Body)); n > 0 {
		// Credits back for exactly the bytes handed to the client socket.
		x.owed += n
	}
	return goOn
}
