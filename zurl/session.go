package zurl

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// session is one outbound request. Packets from the requester are applied
// by the ROUTER goroutine (deliver, never blocking on the network); the one
// goroutine per session (run) makes the HTTP request and pumps the
// response within credits. mu guards the out-seq (every packet is stamped
// and queued under it, so packets leave in seq order), the in-seq, the
// requester's credits and finished.
type session struct {
	srv      *Server
	key      sessKey
	first    *zhttp.Packet
	target   *url.URL
	multi    bool
	userData []byte
	ctx      context.Context
	stop     context.CancelFunc // ends ctx; cancel does it and the rest
	body     *bodyQueue         // nil when the request has no body to stream
	ws       *wsState           // a zws session (ws.go); nil for HTTP
	lastIn   atomic.Int64
	lastOut  atomic.Int64

	mu       sync.Mutex
	cond     *sync.Cond
	inSeq    int64
	outSeq   int64
	credits  int64    // response body bytes the requester can take
	finished bool     // the last packet went out (or the session was aborted)
	conn     net.Conn // the lean client's connection while it is in use (watch)
}

func newSession(s *Server, p *zhttp.Packet, u *url.URL) *session {
	ss := &session{srv: s, key: sessKey{p.From, p.ID}, first: p, target: u, multi: p.Ext.Multi,
		userData: p.UserData, inSeq: 1, credits: p.Credits}
	ss.cond = sync.NewCond(&ss.mu)
	ss.ctx, ss.stop = context.WithCancel(context.Background())
	now := time.Now().UnixNano()
	ss.lastIn.Store(now)
	ss.lastOut.Store(now)
	if p.IsWebSocket() {
		ss.ws = &wsState{}
		return ss
	}
	if p.More {
		ss.body = newBodyQueue(int64(s.cfg.BufferSize)+int64(len(p.Body)), ss.consumed)
		ss.body.push(p.Body, false)
	}
	return ss
}

// cancel ends the session's work (requester's cancel, expiry, shutdown, or
// the end of run): its context, a pump waiting for credits, a transport
// waiting for body, and the lean client's I/O. Done here rather than by
// context.AfterFunc callbacks, which cost a child registration on the
// context per session and per request.
func (ss *session) cancel() {
	ss.stop()
	if ss.body != nil {
		ss.body.close()
	}
	ss.mu.Lock()
	ss.cond.Broadcast()
	c := ss.conn
	ss.mu.Unlock()
	if c != nil {
		_ = c.SetDeadline(aLongTimeAgo) // fails only on a closed conn: nothing to abort
	}
}

// watch registers the lean connection in use, so that cancel aborts its
// I/O; false when the session is already cancelled.
func (ss *session) watch(c net.Conn) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.ctx.Err() != nil {
		return false
	}
	ss.conn = c
	return true
}

// unwatch forgets the connection; false when a cancel may have set its
// deadline (it must not be reused).
func (ss *session) unwatch() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.conn = nil
	return ss.ctx.Err() == nil
}

// ack answers the first packet: a credit of buffer_size at once when a
// body is to come, as zurl does. zurl also acks a complete request at once
// with a keep-alive, which only tells the requester our address (for a
// cancel); a response head within the ack delay tells it the same, so the
// keep-alive goes only if nothing was sent by then: one packet less per
// request each way.
func (ss *session) ack() {
	switch {
	case ss.ws != nil:
		// As zurl: the 101 (or an error) is the first packet.
	case ss.first.More:
		ss.send(&zhttp.Packet{Type: zhttp.Credit, Credits: int64(ss.srv.cfg.BufferSize), HasCredits: true}, false)
	case ss.srv.timers.ack <= 0:
		ss.send(&zhttp.Packet{Type: zhttp.KeepAlive}, false)
	default:
		ss.srv.acks.Push(ss.key)
	}
}

// lateAck is the deferred keep-alive (the ack queue's timer).
func (ss *session) lateAck() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.outSeq == 0 {
		ss.sendLocked(&zhttp.Packet{Type: zhttp.KeepAlive}, false)
	}
}

// consumed re-credits request body bytes the transport has taken; a body
// that came whole in the first packet needs no credits back.
func (ss *session) consumed(n int) {
	if !ss.first.More {
		return
	}
	ss.send(&zhttp.Packet{Type: zhttp.Credit, Credits: int64(n), HasCredits: true}, false)
}

// deliver applies a packet from the requester (ROUTER goroutine).
func (ss *session) deliver(p *zhttp.Packet, now int64) {
	ss.lastIn.Store(now)
	if p.Type == zhttp.Cancel || p.Type == zhttp.Error {
		ss.abort()
		return
	}
	ss.mu.Lock()
	if ss.finished {
		ss.mu.Unlock()
		return
	}
	if p.HasSeq && p.Seq != ss.inSeq {
		ss.srv.log.Warn().Str("id", ss.key.id).Int64("seq", p.Seq).Int64("want", ss.inSeq).Msg("out of sequence, cancelling")
		ss.sendLocked(&zhttp.Packet{Type: zhttp.Cancel}, true)
		ss.mu.Unlock()
		ss.cancel()
		return
	}
	ss.inSeq++
	if len(p.UserData) > 0 {
		ss.userData = p.UserData
	}
	if p.Credits > 0 {
		ss.credits += p.Credits
		ss.cond.Broadcast()
	}
	ss.mu.Unlock()
	if ss.ws != nil {
		ss.wsDeliver(p)
		return
	}
	if p.Type != zhttp.Data || ss.body == nil {
		return
	}
	if !ss.body.push(p.Body, !p.More) {
		ss.srv.log.Warn().Str("id", ss.key.id).Msg("request body beyond credits, cancelling")
		ss.send(&zhttp.Packet{Type: zhttp.Cancel}, true)
		ss.cancel()
	}
}

// abort ends the session without sending anything more.
func (ss *session) abort() {
	ss.mu.Lock()
	ss.finished = true
	ss.cond.Broadcast()
	ss.mu.Unlock()
	ss.cancel()
}

// send stamps and queues a packet; final marks the session's last one.
func (ss *session) send(p *zhttp.Packet, final bool) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.sendLocked(p, final)
}

func (ss *session) sendLocked(p *zhttp.Packet, final bool) bool {
	if ss.finished {
		return false
	}
	p.ID, p.Seq, p.HasSeq = ss.key.id, ss.outSeq, true
	if ss.multi && ss.outSeq == 0 {
		p.Ext.Multi = true
	}
	p.UserData = ss.userData
	ss.outSeq++
	ss.lastOut.Store(time.Now().UnixNano())
	if final {
		ss.finished = true
		ss.cond.Broadcast()
	}
	ss.srv.reply(ss.key.from, p)
	return true
}

func (ss *session) fail(cond string) {
	ss.send(&zhttp.Packet{Type: zhttp.Error, Condition: cond}, true)
}

// failed reports a request or response error unless the session was
// cancelled (then nothing more may be sent).
func (ss *session) failed(err error, what string) {
	if ss.ctx.Err() != nil {
		return
	}
	cond := condition(err)
	ss.srv.log.Info().Err(err).Str("id", ss.key.id).Str("uri", ss.first.URI).Str("condition", cond).Msg(what)
	ss.fail(cond)
}

// run is the session goroutine: request, response, release.
func (ss *session) run() {
	defer ss.srv.done(ss)
	defer ss.cancel()
	if ss.ws != nil {
		ss.runWS()
		return
	}
	p := ss.first
	ctx := ss.ctx
	if p.Timeout > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeout(ctx, time.Duration(p.Timeout)*time.Millisecond)
		defer stop()
	}
	var method string
	var resp *respHead
	var err error
	if lr := leanRequest(p, ss.target); lr != nil {
		method = lr.method
		resp, err = ss.srv.http.lean.roundTrip(ctx, lr, ss)
	} else {
		var body io.Reader
		switch {
		case ss.body != nil:
			body = ss.body
		case len(p.Body) > 0:
			body = bytes.NewReader(p.Body)
		}
		req, client, berr := ss.srv.http.build(ctx, p, ss.target, body)
		if berr != nil {
			ss.srv.log.Info().Err(berr).Str("id", ss.key.id).Msg("bad request")
			ss.fail("bad-request")
			return
		}
		method = req.Method
		var hr *http.Response
		if hr, err = client.Do(req); err == nil {
			resp = fromHTTP(hr)
		}
	}
	if err != nil {
		ss.failed(err, "request failed")
		return
	}
	defer resp.body.Close()
	ss.pump(method, resp)
}

// pump sends the response: the head at once (with the whole body when it
// is declared and fits the credits), then body chunks of at most the
// credits the requester has granted.
func (ss *session) pump(method string, resp *respHead) {
	p := ss.first
	head := &zhttp.Packet{HasCode: true, Code: int64(resp.code), Reason: resp.reason,
		HasHeaders: true, Headers: resp.headers}
	cl := resp.length
	if p.MaxSize > 0 && cl > p.MaxSize {
		ss.failed(ErrMaxSize, "response too large")
		return
	}
	if method == http.MethodHead || resp.code == 204 || resp.code == 304 || cl == 0 {
		ss.send(head, true)
		return
	}
	var body io.Reader = resp.body
	if !p.Headers.Has("Accept-Encoding") {
		var release func()
		var decoded bool
		body, release, decoded = decodeBody(resp.encoding, resp.body)
		defer release()
		if decoded {
			head.Headers = head.Headers.Del("Content-Encoding").Del("Content-Length")
			cl = -1
		}
	}
	bp := ss.srv.bufs.Get().(*[]byte)
	defer ss.srv.bufs.Put(bp)
	buf := *bp
	if cl > 0 && cl <= int64(len(buf)) && cl <= ss.available() {
		n, err := io.ReadFull(body, buf[:cl])
		if err != nil {
			ss.failed(err, "reading response")
			return
		}
		head.Body = buf[:n]
		ss.spendAndSend(head, n, true)
		return
	}
	head.More = true
	if !ss.send(head, false) {
		return
	}
	var total int64
	for {
		n := ss.waitCredits(len(buf))
		if n < 0 {
			return
		}
		m, err := body.Read(buf[:n])
		total += int64(m)
		end := errors.Is(err, io.EOF) || (cl > 0 && total >= cl)
		if err != nil && !end {
			ss.failed(err, "reading response")
			return
		}
		if p.MaxSize > 0 && total > p.MaxSize {
			ss.failed(ErrMaxSize, "response too large")
			return
		}
		if m == 0 && !end {
			continue
		}
		if !ss.spendAndSend(&zhttp.Packet{Body: buf[:m], More: !end}, m, end) || end {
			return
		}
	}
}

// available returns the requester's current credits.
func (ss *session) available() int64 {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.credits
}

// spendAndSend takes n body bytes off the credits and queues p in one
// step; the encoding copies the body, so the caller reuses its buffer.
func (ss *session) spendAndSend(p *zhttp.Packet, n int, final bool) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.credits -= int64(n)
	return ss.sendLocked(p, final)
}

// waitCredits blocks until the requester can take body bytes and returns
// how many (≤ limit); -1 once the session has ended.
func (ss *session) waitCredits(limit int) int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for ss.credits <= 0 && !ss.finished && ss.ctx.Err() == nil {
		ss.cond.Wait()
	}
	if ss.finished || ss.ctx.Err() != nil {
		return -1
	}
	return int(min(ss.credits, int64(limit)))
}
