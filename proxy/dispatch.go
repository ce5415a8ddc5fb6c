package proxy

import (
	"context"
	"time"

	"github.com/pushpin-go/pushpin/proto/handoff"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// onCondureFirst runs in the condure-in PULL goroutine: a new session,
// whose request it routes and sends to zurl itself.
func (p *Proxy) onCondureFirst(msg [][]byte) {
	pk, err := zhttp.ParseMessage(msg[len(msg)-1])
	if err != nil {
		p.log.Debug().Err(err).Msg("condure: dropping invalid packet")
		return
	}
	if pk.From == "" || pk.ID == "" {
		p.log.Debug().Msg("condure: dropping first packet without from/id")
		return
	}
	if pk.IsWebSocket() {
		if !newWSSession(p, pk, time.Now().UnixNano()).start() {
			p.log.Debug().Str("rid", pk.ID).Msg("condure: duplicate session id, dropped")
		}
		return
	}
	if !newSession(p, pk, time.Now().UnixNano()).start() {
		p.log.Debug().Str("rid", pk.ID).Msg("condure: duplicate session id, dropped")
	}
}

// onCondureStream runs in the condure-in-stream ROUTER goroutine: later
// packets, dispatched to their session (list-form ids fan out).
func (p *Proxy) onCondureStream(msg [][]byte) {
	pk, err := zhttp.ParseMessage(msg[len(msg)-1])
	if err != nil {
		p.log.Debug().Err(err).Msg("condure: dropping invalid packet")
		return
	}
	// The credits one message earned from many WebSocket clients come
	// back in one list-form packet: what they let go out next is batched.
	var b *wsBatch
	p.fanOut(pk, func(q *zhttp.Packet) {
		k := clientKey(q.From, q.ID)
		s := p.sessions.get(k)
		if s == nil {
			if ws := p.wsSessions.get(k); ws != nil {
				if b == nil && len(pk.IDs) > 0 {
					b = newWSBatch(p, len(pk.IDs))
				}
				ws.handleIn(event{kind: evClient, p: q}, b)
				return
			}
			p.log.Debug().Str("rid", q.ID).Str("type", string(q.Type)).Msg("condure: packet for unknown session")
			return
		}
		s.handle(event{kind: evClient, p: q})
	})
	if b != nil {
		b.flush()
	}
}

// onZurl runs in the zurl-in SUB goroutine.
func (p *Proxy) onZurl(msg [][]byte) {
	_, m, err := zhttp.SplitPub(msg[0])
	if err == nil {
		var pk *zhttp.Packet
		if pk, err = zhttp.ParseMessage(m); err == nil {
			p.fanOut(pk, func(q *zhttp.Packet) {
				if s := p.zsessions.get(q.ID); s != nil {
					s.handle(event{kind: evZurl, p: q})
				} else if ws := p.wsZ.get(q.ID); ws != nil {
					ws.handle(event{kind: evZurl, p: q})
				} else {
					p.log.Debug().Str("zid", q.ID).Str("type", string(q.Type)).Msg("zurl: packet for unknown request")
				}
			})
			return
		}
	}
	p.log.Debug().Err(err).Msg("zurl: dropping invalid packet")
}

// fanOut calls fn once per session a packet addresses.
func (p *Proxy) fanOut(pk *zhttp.Packet, fn func(*zhttp.Packet)) {
	if len(pk.IDs) == 0 {
		fn(pk)
		return
	}
	for _, e := range pk.IDs {
		q := *pk
		q.IDs, q.ID, q.Seq, q.HasSeq = nil, e.ID, e.Seq, true
		fn(&q)
	}
}

// onRetry runs in the retry PULL goroutine. Resuming handed-back sessions
// is not implemented yet: the message is decoded and logged so that a
// handler using it is visible.
func (p *Proxy) onRetry(msg [][]byte) {
	r, err := handoff.ParseRetry(msg[len(msg)-1])
	if err != nil {
		p.log.Warn().Err(err).Msg("retry: invalid message")
		return
	}
	p.log.Warn().Int("sessions", len(r.Sessions)).Msg("retry: not supported yet, sessions dropped")
}

// ticker sends batched keep-alives and expires silent sessions.
func (p *Proxy) ticker(ctx context.Context) {
	t := time.NewTicker(p.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.keepAliveRound(time.Now().UnixNano())
		}
	}
}

// maxBatch is the most ids one keep-alive packet carries (Pushpin: 128).
const maxBatch = 128

func (p *Proxy) keepAliveRound(now int64) {
	ka, exp := p.keepAlive.Nanoseconds(), p.expiry.Nanoseconds()
	cb := map[string][]*stream{}
	zb := map[string][]*stream{}
	var expired []event
	var expiredS []*session
	check := func(st *stream, batches map[string][]*stream, w *writer, ka int64) {
		if !st.ka.Load() || now-st.lastOut.Load() < ka {
			return
		}
		st.lastOut.Store(now) // the writer stores the real time; this keeps the next round off
		if st.multi {
			batches[st.to] = append(batches[st.to], st)
			return
		}
		w.write(&outItem{st: st, pkt: zhttp.Packet{Type: zhttp.KeepAlive}})
	}
	p.sessions.each(func(s *session) {
		if now-s.client.lastIn.Load() > exp {
			expired, expiredS = append(expired, event{kind: evExpire, client: true}), append(expiredS, s)
			return
		}
		check(s.client, cb, p.cw, ka)
		if z := s.zcur.Load(); z != nil {
			if now-z.lastIn.Load() > exp {
				expired, expiredS = append(expired, event{kind: evExpire}), append(expiredS, s)
				return
			}
			check(z, zb, p.zw, ka)
		}
	})
	for i, s := range expiredS {
		s.handle(expired[i])
	}
	p.wsRound(now, func(st *stream, toZurl bool, every int64) {
		if toZurl {
			check(st, zb, p.zw, every)
		} else {
			check(st, cb, p.cw, every)
		}
	})
	for _, m := range []struct {
		b map[string][]*stream
		w *writer
	}{{cb, p.cw}, {zb, p.zw}} {
		for _, list := range m.b {
			for len(list) > 0 {
				n := min(len(list), maxBatch)
				m.w.write(&outItem{batch: list[:n:n]})
				list = list[n:]
			}
		}
	}
}
