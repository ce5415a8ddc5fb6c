package proxy

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"

	"github.com/pushpin-go/pushpin/proto/grip"
	"github.com/pushpin-go/pushpin/proto/wscontrol"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// onClient takes a packet from the connection manager.
func (s *wsSession) onClient(p *zhttp.Packet) {
	now := time.Now().UnixNano()
	s.client.lastIn.Store(now)
	switch p.Type {
	case zhttp.Cancel, zhttp.Error:
		s.clientGone()
		return
	}
	if p.Seq != s.inSeq {
		s.debug().Int64("expected", s.inSeq).Int64("got", p.Seq).Msg("client: bad seq, canceling")
		s.sendClient(zhttp.Packet{Type: zhttp.Cancel}, true)
		s.end()
		return
	}
	s.inSeq++
	if p.HasCredits && p.Credits > 0 {
		s.credits += p.Credits
		s.window = max(s.window, s.credits)
		s.lastCredit = now
	}
	if s.cGone {
		return
	}
	switch p.Type {
	case zhttp.Data, zhttp.Ping, zhttp.Pong:
		f := wsFrame{data: p.Body, more: p.More}
		switch {
		case p.Type == zhttp.Ping:
			f.kind = wsPing
		case p.Type == zhttp.Pong:
			f.kind = wsPong
		case s.cInMid:
			f.kind, f.cont = s.cInKind, true
		default:
			f.kind = kindOf(p.ContentType)
		}
		if f.isContent() {
			s.cInMid, s.cInKind = p.More, f.kind
		}
		if s.detached || s.cInClosed || s.be == nil {
			s.cCredit += len(f.data) // discarded (grip.md §10.2 detach)
			break
		}
		s.fromClient.push(f)
		s.pumpIn()
	case zhttp.Close:
		if s.cInClosed {
			break
		}
		s.cInClosed = true
		code, reason := closeOf(p)
		if s.cOutClosed {
			// It answers ours: the client side is over.
			if !s.detached && s.be != nil && !s.be.ended() {
				s.fromClient.push(wsFrame{kind: wsClose, code: code, data: reason})
				s.pumpIn()
			}
			s.end()
			return
		}
		if s.detached || s.be == nil || !s.be.writable() {
			s.closeClient(code, reason)
			return
		}
		s.fromClient.push(wsFrame{kind: wsClose, code: code, data: reason})
		s.pumpIn()
	}
	s.pumpOut()
}

// clientGone handles a client that vanished without a close (cancel from
// the connection manager): the backend gets a close (WOH: DISCONNECT) and
// a moment to answer it; the handler hears `gone` when the session ends.
func (s *wsSession) clientGone() {
	s.cGone = true
	s.client.ka.Store(false)
	s.toClient.reset()
	if s.ph != wsOpen || s.detached || s.be == nil || s.be.ended() {
		s.end()
		return
	}
	s.be.gone()
	if s.be.ended() {
		s.end()
		return
	}
	s.closeBy = time.Now().Add(wsCloseWait).UnixNano()
}

// pumpIn forwards the client's frames within the backend's room and
// credits the client for them (in unlock).
func (s *wsSession) pumpIn() {
	for s.be != nil && s.be.writable() {
		f, _, ok := s.fromClient.take(s.be.room(), 1)
		if !ok {
			return
		}
		if f.kind == wsClose {
			s.be.close(f.code, f.data)
			return
		}
		s.cCredit += s.be.send(f)
	}
}

// pumpOut writes queued frames to the client within its credits. Handler
// messages sent to many sessions go into the event's batch (inBatch) when
// there is one, to leave in one packet with the other sessions': while
// some wait there, the frames behind them wait too.
func (s *wsSession) pumpOut() {
	if s.ph != wsOpen || s.cGone || s.cOutClosed {
		return
	}
	if s.heldBack() {
		return
	}
	wrote := false
	for {
		if b := s.inBatch; b != nil && !s.toClient.empty() && s.canBatch(&s.toClient.q[0]) {
			f, _, _ := s.toClient.take(s.credits, 0)
			b.add(s, &f)
			wrote = true
			continue
		}
		if s.batch.pending() {
			if !s.toClient.empty() {
				s.repump.Store(true) // once the batch is written
			}
			break // nothing overtakes the batched messages
		}
		f, whole, ok := s.toClient.take(s.credits, max(s.window/2, 1))
		if !ok {
			break
		}
		if f.kind == wsClose {
			s.closeClient(f.code, f.data)
			return
		}
		s.credits -= int64(len(f.data))
		if f.isContent() {
			s.outMid = f.more
		}
		s.sendClient(wsPacket(&f), false)
		wrote = true
		if whole {
			s.bkCredit += f.credit
			s.ackSend(f.reqID)
		}
	}
	if wrote && s.kaTimeout > 0 && !s.kaInterval {
		s.kaDue = time.Now().UnixNano() + s.kaTimeout
	}
}

// closeClient sends our close to the client (once); if the client had
// closed already, the session is over.
func (s *wsSession) closeClient(code int, reason []byte) {
	if !s.cOutClosed && !s.cGone {
		s.cOutClosed = true
		s.sendClient(closePacket(code, reason), false)
	}
	if s.cInClosed || s.cGone {
		s.end()
	}
}

// bkConnected: the backend accepted the handshake. GRIP is negotiated
// (grip.md §10.1), the handler is told about the session if it needs to
// be, and the client gets its 101.
func (s *wsSession) bkConnected(reason string, headers zhttp.Headers) {
	passUp := s.trusted || s.route.NoGrip
	var gripExt grip.Params
	var gripRaw string
	for _, v := range grip.ListValues(headers, "Sec-WebSocket-Extensions") {
		if p, ok := grip.ParseParams(v, true); ok && p.First() == "grip" {
			gripExt, gripRaw = p, v
			break
		}
	}
	out := make(zhttp.Headers, 0, len(headers))
	for _, h := range headers {
		switch {
		case hasName(h.Name, "Sec-WebSocket-Extensions", "Sec-WebSocket-Accept", "Upgrade", "Connection", "Content-Length"):
		case !passUp && grip.IsGripHeader(h.Name):
		default:
			out = append(out, h)
		}
	}
	var channels []string
	if !passUp {
		for _, c := range grip.ListParams(headers, "Grip-Channel", false) {
			if ch := c.First(); ch != "" {
				channels = append(channels, ch)
			}
		}
	}
	if gripExt != nil {
		if passUp {
			out = append(out, zhttp.Header{Name: "Sec-WebSocket-Extensions", Value: gripRaw})
		} else {
			s.grip = true
			s.prefix = "m:"
			if v, ok := gripExt.Get("message-prefix"); ok {
				s.prefix = strings.Clone(v) // not the packet's arena
			}
			if e := s.debug(); e != nil {
				e.Str("prefix", s.prefix).Msg("grip enabled")
			}
		}
	}
	s.accepted(reason, out, s.grip, channels)
}

// accepted answers the client's handshake with 101: the handler is told
// about the session if GRIP is on (gripOn) or it has channels (sub= or
// Grip-Channel).
func (s *wsSession) accepted(reason string, out zhttp.Headers, gripOn bool, channels []string) {
	s.ph = wsOpen
	t := &s.route.Targets[s.target]
	if gripOn || len(t.Subscriptions) > 0 || len(channels) > 0 {
		s.startControl(append(append([]string(nil), t.Subscriptions...), channels...))
	}
	p := zhttp.Packet{Code: 101, HasCode: true, Reason: reason, Headers: out, HasHeaders: true,
		Credits: initCredits, HasCredits: true}
	p.Ext.Multi = s.multi
	s.sendClient(p, false)
	// The handshake and the rewritten headers served the target attempts;
	// an open session keeps neither (the WebSocket-over-HTTP backend
	// keeps its own sanitized copy for its requests).
	s.first, s.outHeaders = nil, nil
	s.pumpIn()
	s.pumpOut()
}

func hasName(name string, names ...string) bool {
	for _, n := range names {
		if len(n) == len(name) && bytes.EqualFold([]byte(n), []byte(name)) {
			return true
		}
	}
	return false
}

// startControl tells the handler the session exists (`here`, with our
// multi-send) and subscribes it to channels.
func (s *wsSession) startControl(channels []string) {
	if s.px.wsctl == nil || s.ctl {
		return
	}
	s.ctl = true
	here := wscontrol.NewItem(s.cid, wscontrol.Here)
	here.URI, here.Route, here.ChannelPrefix = s.uri, s.route.ID, s.route.Prefix
	here.TTL, here.MultiSend = wscontrol.SessionTTL, true
	items := []wscontrol.Item{here}
	for _, ch := range channels {
		it := wscontrol.NewItem(s.cid, wscontrol.Subscribe)
		it.Channel, it.ReqID = ch, s.newReqID()
		items = append(items, it)
	}
	s.ctlLast.Store(time.Now().UnixNano())
	s.ctlOn.Store(true)
	s.px.wsctl.send(items...)
}

// ctlSubscribe subscribes the session to a channel (a Grip-Channel on a
// WebSocket-over-HTTP OPEN response).
func (s *wsSession) ctlSubscribe(ch string) {
	if !s.ctl {
		s.startControl([]string{ch})
		return
	}
	if s.px.wsctl != nil {
		it := wscontrol.NewItem(s.cid, wscontrol.Subscribe)
		it.Channel, it.ReqID = ch, s.newReqID()
		s.px.wsctl.send(it)
	}
}

// bkFailed: the backend connection ended before or instead of a session.
func (s *wsSession) bkFailed(cond string, p *zhttp.Packet) {
	if s.ph != wsConnecting {
		s.bkGone()
		return
	}
	t := &s.route.Targets[s.target]
	if e := s.debug(); e != nil {
		e.Str("target", targetName(t)).Str("condition", cond).Msg("backend handshake failed")
	}
	switch {
	case connectFailure(cond):
		s.tried = append(s.tried, targetName(t))
		s.be = nil
		s.tryTarget(s.target + 1)
	case cond == "rejected" && p != nil && p.HasCode:
		s.reject(int(p.Code), p.Reason, relayHeaders(p.Headers), p.Body)
	default:
		s.reject502("Error while proxying to origin: " + cond)
	}
}

// bkGone: the backend vanished after the handshake. Unless detached, the
// client is canceled, as Pushpin does.
func (s *wsSession) bkGone() {
	if s.detached {
		return
	}
	if s.cGone {
		s.end()
		return
	}
	s.debug().Msg("backend gone")
	s.sendClient(zhttp.Packet{Type: zhttp.Cancel}, true)
	s.end()
}

// bkClosed: the backend sent its close; it goes to the client after what
// is queued.
func (s *wsSession) bkClosed(code int, reason []byte) {
	if s.cGone {
		s.end()
		return
	}
	if s.detached || s.closing || s.cOutClosed {
		return
	}
	s.flushHeld()
	s.closing = true
	s.toClient.push(wsFrame{kind: wsClose, code: code, data: reason})
	s.pumpOut()
}

// bkFrame takes a frame from the backend: with GRIP on, `c:` messages go
// to the handler, others must carry the prefix (stripped), unprefixed
// ones are dropped (grip.md §10.1).
func (s *wsSession) bkFrame(f wsFrame) {
	f.credit = len(f.data)
	if s.cGone || s.closing || s.cOutClosed || (s.detached && !s.bkMid) {
		s.bkCredit += f.credit
		return
	}
	if f.isContent() {
		if f.cont {
			if s.bkDrop {
				s.bkCredit += f.credit
				s.bkDrop = f.more
				return
			}
		} else if s.grip {
			switch {
			case f.kind == wsText && bytes.HasPrefix(f.data, []byte("c:")):
				if !f.more {
					s.gripControl(f.data[2:])
				}
				s.bkCredit += f.credit
				s.bkDrop = f.more // a fragmented control message is ignored whole
				return
			case bytes.HasPrefix(f.data, []byte(s.prefix)):
				f.data = f.data[len(s.prefix):]
			default:
				s.debug().Msg("dropping unprefixed message")
				s.bkCredit += f.credit
				s.bkDrop = f.more
				return
			}
		}
		s.bkDrop = false
		s.bkMid = f.more
	}
	s.toClient.push(f)
	if !s.bkMid {
		s.flushHeld()
	}
	s.pumpOut()
}

// flushHeld queues the handler messages that waited for a backend message
// to end.
func (s *wsSession) flushHeld() {
	for _, f := range s.held {
		s.toClient.push(f)
	}
	s.held, s.heldBytes = nil, 0
}

// gripControl passes a GRIP control message to the handler. A malformed
// one is logged and ignored, the client stays (Pushpin drops it ~8 s later).
func (s *wsSession) gripControl(msg []byte) {
	var m struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(msg, &m); err != nil {
		s.lg().Info().Err(err).Msg("invalid GRIP control message, ignored")
		return
	}
	switch m.Type {
	case "subscribe", "unsubscribe", "detach", "session", "set-meta", "keep-alive", "send-delayed", "flush-delayed":
	default:
		s.lg().Info().Str("type", m.Type).Msg("unknown GRIP control message, ignored")
		return
	}
	if !s.ctl {
		s.startControl(nil)
	}
	if s.px.wsctl == nil {
		return
	}
	it := wscontrol.NewItem(s.cid, wscontrol.Grip)
	it.Message, it.ReqID = append([]byte(nil), msg...), s.newReqID()
	s.px.wsctl.send(it)
}

// ctlSend queues a message from the handler for the client. Nothing is
// dropped: past maxWSQueue bytes waiting (wsReadingSlack times that while
// the client still takes data) the client is closed with 1008.
func (s *wsSession) ctlSend(f wsFrame) {
	if s.ph != wsOpen || s.cOutClosed || s.cGone || s.closing {
		s.ackSend(f.reqID)
		return
	}
	queued := s.toClient.bytes + s.heldBytes
	if queued > 0 {
		cost := queued + (len(s.toClient.q)+len(s.held)+1)*wsMsgOverhead + len(f.data)
		if cost > maxWSQueue && (cost > maxWSQueue*wsReadingSlack ||
			time.Now().UnixNano()-s.lastCredit >= int64(s.px.wsGrace)) {
			s.overflow()
			return
		}
	}
	if s.bkMid {
		s.held = append(s.held, f)
		s.heldBytes += len(f.data)
		return
	}
	if b := s.inBatch; b != nil && s.toClient.empty() && s.canBatch(&f) && !s.heldBack() {
		b.add(s, &f) // what pumpOut would do, without queueing it first
		s.wroteToClient()
		return
	}
	s.toClient.push(f)
	s.pumpOut()
}

// overflow closes a client that cannot keep up with what is sent to it:
// the messages waiting are discarded and the backend is closed too. A
// message partly written is finished first (condure writes no close
// inside a message: the client would wait for its end for ever); the
// close comes right after it, else at once.
func (s *wsSession) overflow() {
	s.lg().Info().Int("queued", s.toClient.bytes+s.heldBytes).Msg("client cannot keep up, closing")
	keep := 0
	if s.outMid {
		for i := range s.toClient.q {
			if f := &s.toClient.q[i]; f.isContent() && !f.more {
				keep = i + 1
				break
			}
		}
	}
	q := s.toClient.reset()
	for _, f := range q[:keep] {
		s.toClient.push(f)
	}
	for _, f := range append(q[keep:], s.held...) {
		s.ackSend(f.reqID)
	}
	s.held, s.heldBytes = nil, 0
	if !s.detached && s.be != nil {
		s.be.close(-1, nil)
	}
	s.closing = true
	if keep == 0 && !s.batch.pending() {
		s.closeClient(closePolicy, []byte(textCannotKeepUp))
		return
	}
	// Behind the part-written message, or the messages waiting in a
	// batch (it pumps the close once they are out).
	s.toClient.push(wsFrame{kind: wsClose, code: closePolicy, data: []byte(textCannotKeepUp)})
	s.pumpOut()
}

// ctlClose is the handler's `close`: the backend gets a close, the client
// one after what is queued for it.
func (s *wsSession) ctlClose(code int, reason []byte) {
	if s.closing || s.cOutClosed {
		return
	}
	if !s.detached && s.be != nil {
		s.be.close(-1, nil)
	}
	s.closing = true
	s.flushHeld()
	s.toClient.push(wsFrame{kind: wsClose, code: code, data: reason})
	s.pumpOut()
}

// ctlDetach drops the backend side; the client stays.
func (s *wsSession) ctlDetach() {
	if s.detached {
		return
	}
	s.detached = true
	s.fromClient.reset()
	if s.be != nil {
		s.be.detach()
	}
}

// ctlKeepAliveSetup is the handler's keep-alive-setup.
func (s *wsSession) ctlKeepAliveSetup(mode string, timeout int64) {
	if timeout <= 0 {
		s.kaTimeout, s.kaDue = 0, 0
		return
	}
	s.kaTimeout = timeout * int64(time.Second)
	s.kaInterval = mode == "interval"
	s.kaDue = time.Now().UnixNano() + s.kaTimeout
}

// ctlCancel is the handler's cancel: both sides are dropped.
func (s *wsSession) ctlCancel() {
	if !s.cGone {
		s.sendClient(zhttp.Packet{Type: zhttp.Cancel}, true)
	}
	s.end()
}
