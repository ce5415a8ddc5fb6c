package proxy

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/proto/wscontrol"
	"github.com/pushpin-go/pushpin/proto/zmq"
)

// maxSharedIDs bounds the ids of one shared data packet (as the handler's
// fan-out does): about 30 bytes of id list per session.
const maxSharedIDs = 1024

// wsControl is the proxy's end of the ws-control link with the handler
// (zhttp.md §11): items about the WebSocket sessions the handler knows
// (GRIP-enabled or with sub= channels). The PUSH toward the handler is
// written under a mutex by whichever goroutine has items; the PULL from it
// is read by the ws-control-in goroutine, which handles each item in place
// on its session.
type wsControl struct {
	px  *Proxy
	ctx context.Context
	out *zmq.Locked
	log zerolog.Logger
}

// send writes items to the handler, at most wscontrol.MaxItems a packet.
// A nil wsControl (sockets not configured) drops them.
func (c *wsControl) send(items ...wscontrol.Item) {
	if c == nil {
		return
	}
	for len(items) > 0 {
		n := min(len(items), wscontrol.MaxItems)
		batch := items[:n]
		c.out.SendEncoded(c.ctx, func(dst []byte) []byte { return wscontrol.Append(dst, batch) })
		items = items[n:]
	}
}

// onMessage runs in the ws-control-in goroutine.
func (c *wsControl) onMessage(msg [][]byte) {
	items, err := wscontrol.Parse(msg[len(msg)-1])
	if err != nil {
		c.log.Warn().Err(err).Msg("ws-control: invalid packet, dropped")
		return
	}
	for i := range items {
		c.onItem(&items[i])
	}
}

// sendFrame is the frame a `send` item asks for.
func sendFrame(it *wscontrol.Item) wsFrame {
	f := wsFrame{kind: wsText, data: it.Message, reqID: it.ReqID}
	switch it.ContentType {
	case "binary":
		f.kind = wsBinary
	case "ping":
		f.kind = wsPing
	case "pong":
		f.kind = wsPong
	}
	if f.data == nil {
		f.data = []byte{}
	}
	return f
}

func (c *wsControl) unknown(cid string, t wscontrol.Type) {
	c.log.Debug().Str("cid", cid).Str("type", string(t)).Msg("ws-control: item for unknown connection, canceling")
	if t != wscontrol.Cancel && t != wscontrol.Gone {
		c.send(wscontrol.NewItem(cid, wscontrol.Cancel))
	}
}

func (c *wsControl) onItem(it *wscontrol.Item) {
	if it.Type == wscontrol.Send && len(it.CIDs) > 0 {
		c.multiSend(it)
		return
	}
	s := c.px.wsCids.get(it.CID)
	if s == nil {
		c.unknown(it.CID, it.Type)
		return
	}
	// Everything but a send is acked at once; a send once written.
	if it.ReqID != "" && it.Type != wscontrol.Ack && it.Type != wscontrol.Send {
		ack := wscontrol.NewItem(it.CID, wscontrol.Ack)
		ack.ReqID = it.ReqID
		c.send(ack)
	}
	s.with(func() {
		switch it.Type {
		case wscontrol.Send:
			s.ctlSend(sendFrame(it))
		case wscontrol.Close:
			s.ctlClose(int(it.Code), []byte(it.Reason))
		case wscontrol.Detach:
			s.ctlDetach()
		case wscontrol.KeepAliveSetup:
			s.ctlKeepAliveSetup(it.KeepAliveMode, it.Timeout)
		case wscontrol.Cancel:
			s.ctlCancel()
		}
	})
}

// multiSend delivers one `send` to the sessions its cids list (our
// extension). Each session queues it as any message (the queue bound
// applies); those that may send it now, behind a connection manager that
// takes list-form ids on data packets (ext.multi-data), get it in one
// shared packet per connection manager (wsBatch), the others one by one
// or later.
func (c *wsControl) multiSend(it *wscontrol.Item) {
	f := sendFrame(it)
	if f.isContent() {
		f.msg = c.px.wsMsgs.Add(1)
	}
	b := newWSBatch(c.px, len(it.CIDs)+1)
	for i := -1; i < len(it.CIDs); i++ {
		cid := it.CID
		if i >= 0 {
			cid = it.CIDs[i]
		}
		s := c.px.wsCids.get(cid)
		if s == nil {
			c.unknown(cid, it.Type)
			continue
		}
		g := f
		if i >= 0 {
			g.reqID = ""
		}
		s.withIn(b, func() { s.ctlSend(g) })
	}
	b.flush()
}

// wroteToClient re-arms the handler's idle keep-alive.
func (s *wsSession) wroteToClient() {
	if s.kaTimeout > 0 && !s.kaInterval {
		s.kaDue = time.Now().UnixNano() + s.kaTimeout
	}
}

// wsRound is the ticker's pass over the WebSocket sessions: keep-alives
// of their zws streams (through check, batched with the HTTP sessions'),
// expiry, ws-control keep-alive items every keep-alive interval (batched
// up to 128 a packet) and the sessions' own timers.
func (p *Proxy) wsRound(now int64, check func(st *stream, toZurl bool, every int64)) {
	ka, exp := p.keepAlive.Nanoseconds(), p.expiry.Nanoseconds()
	var items []wscontrol.Item
	var due []*wsSession
	var expired []event
	p.wsSessions.each(func(s *wsSession) {
		if now-s.client.lastIn.Load() > exp {
			due, expired = append(due, s), append(expired, event{kind: evExpire, client: true})
			return
		}
		every := ka
		if s.starved.Load() {
			// condure holds back the credits it owes a WebSocket whose
			// client stopped reading and then went on, until it gets a
			// packet from us (45 s later: the keep-alive): a session
			// waiting for credits nudges it every tick.
			every = min(ka, p.tick.Nanoseconds())
		}
		check(s.client, false, every)
		if z := s.zcur.Load(); z != nil {
			if now-z.lastIn.Load() > exp {
				due, expired = append(due, s), append(expired, event{kind: evExpire})
				return
			}
			check(z, true, ka)
		}
		if s.ctlOn.Load() && now-s.ctlLast.Load() >= ka {
			s.ctlLast.Store(now)
			it := wscontrol.NewItem(s.cid, wscontrol.KeepAlive)
			it.TTL = wscontrol.SessionTTL
			items = append(items, it)
		}
		if t := s.tickAt.Load(); t > 0 && now >= t {
			due, expired = append(due, s), append(expired, event{kind: evTick})
		}
	})
	for i, s := range due {
		s.handle(expired[i])
	}
	p.wsctl.send(items...)
}
