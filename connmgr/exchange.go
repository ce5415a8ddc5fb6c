package connmgr

import (
	"github.com/pushpin-go/pushpin/connmgr/internal/http1"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// exchange is one request/response on a connection, carried as one zhttp
// client session. Its connection's runner owns it.
type exchange struct {
	c   *conn
	s   *Server
	req *http1.Request // nil once the response started: a held stream keeps no head
	ss  *session
	ws  *wsSession // a WebSocket connection (nil: HTTP)

	dec      http1.BodyDecoder
	pending  []byte // decoded request body not yet sent (window of c.buf)
	credits  int64  // request body bytes the server accepts
	bodySent bool   // the final request body packet went out
	inSeq    int64

	// grant is how many response body bytes the server may still send:
	// what we offered in the request plus every credit returned since.
	grant int64
	// owed: credits to return (as soon as the server can be told);
	// unflushed: credits of body bytes still in c.out, owed once written.
	owed, unflushed int64
	// creditGen/creditIdx: this exchange's entry in the running worker's
	// creditBatch, while that batch's generation is creditGen.
	creditGen uint64
	creditIdx int32

	minor     int
	expect100 bool
	started   bool
	sent100   bool // "100 Continue" written (Expect: 100-continue)
	plan      http1.Plan
	written   int64 // response body bytes written (FrameLength)
}

type outcome int

const (
	goOn     outcome = iota
	finished         // the response is complete
	abort            // close the connection now
	linger           // close the connection once its output is written
)

// startExchange opens the zhttp session for req and sends its first
// packet; w is set for a WebSocket handshake (a zws session).
func (c *conn) startExchange(req *http1.Request, w *wsSession) {
	s := c.s
	x := &exchange{c: c, s: s, req: req, ss: s.newSession(c), dec: http1.NewBodyDecoder(req),
		grant: int64(s.cfg.BufferSize), minor: req.Minor, expect100: req.Expect100, ws: w}
	x.bodySent = !req.HasBody()
	c.x = x
	c.headBy = 0
	c.touch()
	s.register(x.ss)
	first := &zhttp.Packet{From: s.cfg.ID, ID: x.ss.id, Seq: 0, HasSeq: true, Ext: ourExt,
		Method: req.Method, URI: req.URI("http"), Headers: req.Headers, HasHeaders: true,
		More: req.HasBody(), Stream: true, Credits: x.grant, HasCredits: true,
		PeerAddress: c.peerAddr, PeerPort: c.peerPort}
	if w != nil {
		// As condure: a ws:// URI, no body and no `stream`.
		x.bodySent, x.expect100 = true, false
		first.URI, first.More, first.Stream = req.URI("ws"), false, false
	}
	// Sized once up front: growing it field by field cost half a dozen
	// allocations per request. The PUSH sender may keep it (queued).
	s.push.Send(first.AppendMessage(make([]byte, 0, firstPacketSize(first))))
	s.log.Debug().Str("id", x.ss.id).Str("method", req.Method).Str("uri", first.URI).Msg("request")
}

// firstPacketSize is about what a first packet encodes to (tnetstring
// framing of the fields and headers included), a little more rather than
// less.
func firstPacketSize(p *zhttp.Packet) int {
	n := 320 + len(p.From) + len(p.ID) + len(p.Method) + len(p.URI) + len(p.PeerAddress)
	for _, h := range p.Headers {
		n += len(h.Name) + len(h.Value) + 24
	}
	return n
}

func (c *conn) endExchange() {
	if w := c.x.ws; w != nil && w.defl != nil {
		w.defl.release()
	}
	c.s.endSession(c.x.ss)
	c.x = nil
}

// cancel tells the server the client is gone (when there is a server to
// tell). Packets already queued may name the server: look at them first.
func (x *exchange) cancel() {
	c := x.c
	c.mu.Lock()
	for i := range c.queue {
		ev := &c.queue[i]
		if ev.kind == evPacket && ev.ss == x.ss && ev.d.p.Type != zhttp.HandoffStart {
			x.ss.retarget(ev.d.p.From, ev.d.p.Ext.Multi)
		}
	}
	c.mu.Unlock()
	x.s.send(x.ss, &zhttp.Packet{Type: zhttp.Cancel})
}

// pump decodes buffered request body and sends it within the server's
// credits. The final packet has no `more`; for a chunked body it is an
// empty packet after the last chunk, as condure does.
func (x *exchange) pump() outcome {
	if x.ws != nil {
		return x.wsPump()
	}
	c := x.c
	for !x.bodySent {
		if len(x.pending) == 0 && !x.dec.Done() {
			data, n, err := x.dec.Decode(c.data)
			c.data = c.data[n:]
			if err != nil {
				x.s.log.Debug().Str("id", x.ss.id).Err(err).Msg("bad request body")
				x.cancel()
				if !x.started {
					c.refuse(x.minor, 400, "Bad Request", "Bad Request.\n")
					return linger
				}
				return abort
			}
			x.pending = data
			if n == 0 {
				break // need more input
			}
			if len(data) == 0 && !x.dec.Done() {
				continue
			}
		}
		if x.ss.to == "" || x.ss.handoff {
			break
		}
		if len(x.pending) > 0 {
			if x.credits <= 0 {
				break
			}
			k := min(int64(len(x.pending)), x.credits)
			last := x.dec.Done() && k == int64(len(x.pending))
			if !x.s.send(x.ss, &zhttp.Packet{Body: x.pending[:k], More: !last}) {
				break
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
			break
		}
	}
	if len(x.pending) == 0 {
		c.release()
	}
	return goOn
}

func (x *exchange) onPacket(d *delivery) outcome {
	if x.ws != nil {
		return x.wsPacket(d)
	}
	ss, p := x.ss, d.p
	switch p.Type {
	case zhttp.Cancel, zhttp.Error:
		x.s.log.Debug().Str("id", ss.id).Str("type", string(p.Type)).Str("condition", p.Condition).Msg("server ended session")
		if !x.started {
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
	if x.expect100 && !x.sent100 && !x.started && p.Type != zhttp.Data {
		// As condure: the client may send the body once a server answered.
		x.sent100 = true
		if _, err := x.c.send([][]byte{continue100}); err != nil {
			x.cancel()
			return abort
		}
	}
	switch p.Type {
	case zhttp.HandoffStart:
		x.s.proceed(ss)
		return goOn
	case zhttp.Data:
		if res := x.writeResponse(d); res != goOn {
			return res
		}
	}
	x.returnCredits()
	return x.pump()
}

var continue100 = []byte("HTTP/1.1 100 Continue\r\n\r\n")

// returnCredits gives the server back what it is owed, in a worker's
// batch when the server takes list-form ids, else in a packet of its own.
// During a handoff it waits for the new owner.
func (x *exchange) returnCredits() {
	if x.owed <= 0 {
		return
	}
	ss := x.ss
	if b := x.c.rt; b != nil && b.batch != nil && ss.multi && ss.to != "" && !ss.handoff {
		b.batch.add(x, x.owed)
	} else if !x.s.send(ss, &zhttp.Packet{Type: zhttp.Credit, Credits: x.owed, HasCredits: true}) {
		return
	}
	x.grant += x.owed
	x.owed = 0
}

// writeResponse writes a response data packet to the client with condure's
// framing and accounts for the credits of its body.
func (x *exchange) writeResponse(d *delivery) outcome {
	p, c := d.p, x.c
	if n := int64(len(p.Body)); n > x.grant {
		// As condure: a server that overruns its credits loses the session.
		x.s.log.Warn().Str("id", x.ss.id).Int64("body", n).Int64("credits", x.grant).Msg("server exceeded credits")
		x.cancel()
		return abort
	}
	var bufs [6][]byte
	k := 0
	var scratch *[]byte
	if !x.started {
		if !p.HasCode {
			x.s.log.Warn().Str("id", x.ss.id).Msg("first response packet without code")
			x.cancel()
			c.refuse(x.minor, 502, "Bad Gateway", "Bad Gateway.\n")
			return linger
		}
		x.plan = http1.PlanResponse(x.req, int(p.Code), p.Headers, p.More, len(p.Body))
		scratch = x.s.bufs.Get().(*[]byte)
		bufs[k] = http1.AppendHead((*scratch)[:0], x.req, int(p.Code), p.Reason, p.Headers, x.plan)
		k++
		x.started = true
		x.req = nil
	}
	x.grant -= int64(len(p.Body))
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
		bufs[k] = body
		k++
	case http1.FrameChunked:
		if len(body) > 0 && d.chunk != nil {
			bufs[k] = d.chunk // shared by every session; ends with the last chunk if p ends the body
			k++
			break
		}
		if len(body) > 0 {
			bufs[k], bufs[k+1], bufs[k+2] = http1.AppendChunkHeader(nil, len(body)), body, http1.CRLF
			k += 3
		}
		if !p.More && !x.plan.NoBody {
			bufs[k] = http1.LastChunk
			k++
		}
	case http1.FrameClose:
		bufs[k] = body
		k++
	}
	all, err := c.send(bufs[:k])
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
			return linger // close-delimited: closing ends the body
		}
		return finished
	}
	// Credits come back for exactly the bytes handed to the client socket:
	// now, or once the kept rest of this write is out.
	if n := int64(len(p.Body)); n > 0 {
		if all {
			x.owed += n
		} else {
			x.unflushed += n
		}
	}
	return goOn
}
