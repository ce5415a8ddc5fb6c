package proxy

import (
	"time"

	"github.com/pushpin-go/pushpin/configs/routing"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// wsPass is the passthrough backend: a zws session to zurl, which holds a
// real WebSocket to the backend (ws:// or wss://). Frames are relayed with
// zws credits both ways: zurl may send initCredits bytes we have not
// passed on, and we send it no more than it credited.
type wsPass struct {
	s   *wsSession
	t   *routing.Target
	uri string
	z   *stream

	zIn       int64 // next seq expected from zurl
	credits   int64 // content bytes zurl takes now
	open      bool  // zurl answered the handshake with 101
	inMid     bool  // a fragmented message from zurl is under way
	inKind    wsKind
	inClosed  bool // zurl sent its close
	outClosed bool // we sent ours
	done      bool
}

func newWSPass(s *wsSession, t *routing.Target, uri string) *wsPass {
	return &wsPass{s: s, t: t, uri: uri}
}

func (b *wsPass) start() {
	s := b.s
	b.z = newStream(newUUID(), "", time.Now().UnixNano())
	s.px.wsZ.add(b.z.id, s)
	s.zcur.Store(b.z)
	p := zhttp.Packet{
		URI: b.uri, Headers: s.outHeaders, HasHeaders: true,
		Credits: initCredits, HasCredits: true, Ext: zhttp.Ext{Multi: true},
		ConnectHost: b.t.Host, ConnectPort: int64(b.t.Port),
		IgnorePolicies: !b.t.Untrusted, IgnoreTLSErrors: b.t.Insecure, TrustConnectHost: b.t.TrustConnectHost,
	}
	s.px.zw.write(&outItem{st: b.z, pkt: p, push: true})
	if e := s.debug(); e != nil {
		e.Str("zid", b.z.id).Str("uri", b.uri).Str("target", targetName(b.t)).Msg("websocket to backend")
	}
}

func (b *wsPass) writable() bool { return b.open && !b.outClosed && !b.done }

func (b *wsPass) room() int64 { return b.credits }

func (b *wsPass) send(f wsFrame) int {
	b.credits -= int64(len(f.data))
	b.s.px.zw.write(&outItem{st: b.z, pkt: wsPacket(&f)})
	return len(f.data)
}

func (b *wsPass) detach() { b.close(-1, nil) }
func (b *wsPass) gone()   { b.close(closeGoingAway, nil) }

func (b *wsPass) close(code int, reason []byte) {
	if !b.open || b.outClosed || b.done {
		if !b.open && !b.done {
			b.abort() // still connecting: nothing to close gracefully
		}
		return
	}
	b.outClosed = true
	b.s.px.zw.write(&outItem{st: b.z, pkt: closePacket(code, reason)})
	if b.inClosed {
		b.finish()
	}
}

func (b *wsPass) credit(n int) {
	if n > 0 && b.open && !b.done && !b.inClosed {
		b.s.px.zw.write(&outItem{st: b.z, pkt: zhttp.Packet{Type: zhttp.Credit, Credits: int64(n), HasCredits: true}})
	}
}

func (b *wsPass) abort() {
	if b.done {
		return
	}
	if b.z.to != "" {
		b.s.px.zw.write(&outItem{st: b.z, pkt: zhttp.Packet{Type: zhttp.Cancel}, final: true})
	}
	b.finish()
}

func (b *wsPass) ended() bool { return b.done }

// finish forgets the zws stream.
func (b *wsPass) finish() {
	if b.done {
		return
	}
	b.done = true
	b.z.ka.Store(false)
	b.s.px.wsZ.del(b.z.id, b.s)
	b.s.zcur.CompareAndSwap(b.z, nil)
}

func (b *wsPass) refresh()   {}
func (b *wsPass) due() int64 { return 0 }
func (b *wsPass) tick(int64) {}
func (b *wsPass) expired()   { b.abort(); b.s.bkFailed("session-timeout", nil) }

func (b *wsPass) onZurl(p *zhttp.Packet) {
	s, z := b.s, b.z
	if b.done || p.ID != z.id {
		return
	}
	z.lastIn.Store(time.Now().UnixNano())
	if p.Type != zhttp.Cancel && p.Type != zhttp.Error && p.Seq != b.zIn {
		s.debug().Int64("expected", b.zIn).Int64("got", p.Seq).Msg("backend: bad seq")
		b.abort()
		s.bkFailed("bad-seq", nil)
		return
	}
	b.zIn++
	if z.to == "" && p.Type != zhttp.Cancel && p.Type != zhttp.Error {
		if p.From == "" {
			b.finish()
			s.bkFailed("bad-format", nil)
			return
		}
		z.to, z.multi = p.From, p.Ext.Multi
		z.ka.Store(true)
	}
	if p.HasCredits && p.Credits > 0 {
		b.credits += p.Credits
	}
	switch p.Type {
	case zhttp.Error:
		b.finish()
		s.bkFailed(p.Condition, p)
		return
	case zhttp.Cancel:
		b.finish()
		s.bkFailed("disconnected", nil)
		return
	case zhttp.Data:
		if !b.open {
			if !p.HasCode {
				b.abort()
				s.bkFailed("bad-format", nil)
				return
			}
			b.open = true
			s.bkConnected(p.Reason, p.Headers)
			return
		}
		f := wsFrame{data: p.Body, more: p.More}
		if b.inMid {
			f.kind, f.cont = b.inKind, true
		} else {
			f.kind = kindOf(p.ContentType)
		}
		b.inMid, b.inKind = p.More, f.kind
		s.bkFrame(f)
	case zhttp.Ping, zhttp.Pong:
		if b.open {
			k := wsPing
			if p.Type == zhttp.Pong {
				k = wsPong
			}
			s.bkFrame(wsFrame{kind: k, data: p.Body})
		}
	case zhttp.Close:
		if !b.open || b.inClosed {
			return
		}
		b.inClosed = true
		code, reason := closeOf(p)
		if b.outClosed {
			b.finish()
		}
		s.bkClosed(code, reason)
		return
	}
	if b.open {
		s.pumpIn()
	}
}
