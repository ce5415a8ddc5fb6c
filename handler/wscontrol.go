package handler

// ws-control intake: the items the proxy sends about its WebSocket
// sessions (zhttp.md §11), and the GRIP control messages (grip.md §10.2)
// its `grip` items carry.

import (
	"strconv"
	"time"

	"github.com/pushpin-go/pushpin/proto/grip"
	"github.com/pushpin-go/pushpin/proto/wscontrol"
)

// onWSControl handles one ws-control packet from the proxy. The items it
// causes (acks, cancels, detach, keep-alive-setup, keep-alive sends) go
// back in as few packets as possible, after the whole packet is handled,
// as Pushpin does.
//
// Deviation from Pushpin 1.36, on purpose: Pushpin stops at a `grip` item
// whose control message is not valid (bad JSON, unknown type, a field of
// the wrong type) and drops the rest of the packet, including the ack it
// owed that item; its proxy then fails the session for want of the ack and
// the client is disconnected about 8 s later. We log the message, ignore
// it, ack the item and go on: the client stays connected (issue 9).
func (e *engine) onWSControl(items []wscontrol.Item) {
	var out []wscontrol.Item
	for i := range items {
		it := &items[i]
		if it.Type != wscontrol.Ack && it.ReqID != "" {
			ack := wscontrol.NewItem(it.CID, wscontrol.Ack)
			ack.ReqID = it.ReqID
			out = append(out, ack)
		}
		if it.Type == wscontrol.Here {
			e.wsHere(it)
			continue
		}
		s := e.ws[it.CID]
		if s == nil {
			// Not known (expired, or the handler restarted): cancel, so the
			// proxy closes the client, which reconnects and is known again,
			// as Pushpin does. An end or an ack needs no answer.
			switch it.Type {
			case wscontrol.Gone, wscontrol.Cancel, wscontrol.Ack:
			default:
				out = append(out, wscontrol.NewItem(it.CID, wscontrol.Cancel))
			}
			continue
		}
		switch it.Type {
		case wscontrol.KeepAlive:
			e.wsRefresh(s, it.TTL)
		case wscontrol.Gone, wscontrol.Cancel:
			e.wsEnd(s)
		case wscontrol.Grip:
			out = e.wsControlMessage(s, it.Message, out)
		case wscontrol.NeedKeepAlive:
			if s.ka != nil {
				out = append(out, wsSendItem(s.cid, s.ka.kind, s.ka.body))
			}
		case wscontrol.Subscribe:
			if it.Channel != "" {
				e.wsSubscribe(s, it.Channel, nil, true)
			}
		case wscontrol.Ack:
			e.wsAck(s, it.ReqID)
		default:
			e.log.Debug().Str("cid", s.cid).Str("type", string(it.Type)).Msg("ws-control item the handler does not take, ignored")
		}
	}
	e.wsWrite(out)
}

// wsControlMessage applies one GRIP control message (the JSON after "c:")
// from s's backend and returns out with the items it causes appended.
func (e *engine) wsControlMessage(s *wsSession, msg []byte, out []wscontrol.Item) []wscontrol.Item {
	cm, err := grip.ParseControlMessage(msg)
	if err != nil {
		e.log.Warn().Err(err).Str("cid", s.cid).Int("bytes", len(msg)).
			Msg("invalid grip control message, ignored (the client stays connected)")
		return out
	}
	switch cm.Type {
	case grip.ControlSubscribe:
		e.wsSubscribe(s, s.prefix+cm.Channel, cm.Filters, false)
	case grip.ControlUnsubscribe:
		e.wsUnsubscribe(s, s.prefix+cm.Channel)
	case grip.ControlDetach:
		out = append(out, wscontrol.NewItem(s.cid, wscontrol.Detach))
	case grip.ControlSession:
		s.sid = cm.SessionID
	case grip.ControlSetMeta:
		s.setMeta(cm.Name, cm.Value, cm.HasValue)
	case grip.ControlKeepAlive:
		setup := wscontrol.NewItem(s.cid, wscontrol.KeepAliveSetup)
		if cm.HasContent {
			s.ka = &wsMsg{kind: wsKindOf(cm.MessageType), body: cm.Content}
			setup.KeepAliveMode = "idle"
			if cm.Mode == grip.KeepAliveInterval {
				setup.KeepAliveMode = "interval"
			}
			setup.Timeout = int64(cm.Timeout)
			if setup.Timeout <= 0 {
				setup.Timeout = grip.DefaultWSKeepAliveTimeout
			}
		} else {
			s.ka = nil // no timeout: the proxy stops asking
		}
		out = append(out, setup)
	case grip.ControlSendDelayed:
		timeout := cm.Timeout
		if timeout <= 0 {
			timeout = grip.DefaultSendDelayedTimeout
		}
		e.wsSendDelayed(s, wsMsg{kind: wsKindOf(cm.MessageType), body: cm.Content}, timeout)
	case grip.ControlFlushDelayed:
		e.wsFlushDelayed(s)
	}
	return out
}

// wsSendDelayed sends the pending delayed message now, if any, and makes m
// the pending one, sent after timeout seconds unless flushed or replaced.
// The timer only posts to the engine; the engine checks the message is
// still the pending one of a live session.
func (e *engine) wsSendDelayed(s *wsSession, m wsMsg, timeout int) {
	e.wsFlushDelayed(s)
	d := &wsDelayed{wsMsg: m}
	d.timer = time.AfterFunc(time.Duration(timeout)*time.Second, func() {
		e.post(func() {
			if s.delayed == d && !s.ended {
				e.wsFlushDelayed(s)
			}
		})
	})
	s.delayed = d
}

// wsFlushDelayed sends s's pending delayed message now. It goes as Pushpin
// sends it: queued by the proxy (queue), with a req-id the proxy acks.
func (e *engine) wsFlushDelayed(s *wsSession) {
	d := s.delayed
	if d == nil {
		return
	}
	s.delayed = nil
	d.timer.Stop()
	it := wsSendItem(s.cid, d.kind, d.body)
	it.Queue = true
	it.ReqID = e.wsRequest(s)
	e.wsWrite([]wscontrol.Item{it})
}

// wsRequest returns the req-id of a request about to be sent to s's proxy
// and starts waiting for its ack.
func (e *engine) wsRequest(s *wsSession) string {
	id := s.nextReq
	s.nextReq++
	if s.ackDue == 0 {
		s.ackDue = e.wsRing.sec(time.Now()) + wsAckWait + 1
		e.wsSchedule(s)
	}
	return strconv.FormatUint(uint64(id), 10)
}

// wsAck takes the proxy's ack of a request. The proxy handles items in
// order, so an ack also answers every earlier request.
func (e *engine) wsAck(s *wsSession, reqID string) {
	n, err := strconv.ParseUint(reqID, 10, 32)
	if err != nil || uint32(n) < s.ackWant || uint32(n) >= s.nextReq {
		return
	}
	s.ackWant = uint32(n) + 1
	s.ackDue = 0
	if s.ackWant != s.nextReq {
		s.ackDue = e.wsRing.sec(time.Now()) + wsAckWait + 1
		e.wsSchedule(s)
	}
}

func wsSendItem(cid string, k wsKind, body []byte) wscontrol.Item {
	it := wscontrol.NewItem(cid, wscontrol.Send)
	it.ContentType = k.String()
	it.Message, it.HasMessage = body, true
	return it
}

// wsWrite sends items to the proxy, MaxItems a packet.
func (e *engine) wsWrite(items []wscontrol.Item) {
	if e.wsOut == nil {
		return
	}
	for len(items) > 0 {
		n := min(len(items), wscontrol.MaxItems)
		e.wsOut(wscontrol.Append(nil, items[:n]))
		items = items[n:]
	}
}
