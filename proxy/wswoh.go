package proxy

import (
	"math"
	"strings"
	"time"

	"github.com/pushpin-go/pushpin/configs/routing"
	"github.com/pushpin-go/pushpin/proto/grip"
	"github.com/pushpin-go/pushpin/proto/wsevents"
	"github.com/pushpin-go/pushpin/proto/zhttp"
	"github.com/pushpin-go/pushpin/proxy/internal/woh"
)

// wohFrameMax is the largest frame a WebSocket-over-HTTP message is split
// into toward the client (Pushpin: 16384).
const wohFrameMax = 16384

// wsWOH is the WebSocket-over-HTTP backend of an over_http target: the
// woh.Conn state machine decides which HTTP requests to make (one at a
// time) and what their responses mean; this drives it with requests to
// zurl and carries out its actions on the session.
type wsWOH struct {
	s   *wsSession
	t   *routing.Target
	uri string // http(s):// URI of the requests
	c   *woh.Conn

	z       *stream // the request in flight, nil if none
	zIn     int64
	gotHead bool
	pending int  // backend bytes not yet written to the client
	done    bool // the Conn finished (or was abandoned)
}

// newWOH makes the backend of an over_http target (Proxy.newWOH).
func newWOH(s *wsSession, t *routing.Target, host string) wsBackend {
	return &wsWOH{s: s, t: t, uri: targetURI(t, host, s.rest)}
}

func (b *wsWOH) start() {
	s := b.s
	hdrs := s.outHeaders
	var signer *grip.Signer
	if !s.route.NoGrip && !s.trusted {
		// Our Grip-Sig is made fresh for every request by Sign.
		hdrs = hdrs.Clone().Del("Grip-Sig").Del("Grip-Feature")
		signer = s.px.signerFor(s.route)
	}
	sign := func(h zhttp.Headers) zhttp.Headers {
		if signer == nil {
			return h
		}
		tok, err := signer.Token()
		if err != nil {
			s.lg().Error().Err(err).Msg("signing Grip-Sig")
			return h
		}
		return append(h, zhttp.Header{Name: "Grip-Sig", Value: tok}, zhttp.Header{Name: "Grip-Feature", Value: grip.Feature})
	}
	c, acts := woh.New(woh.Config{ConnectionID: s.cid, Headers: hdrs, Sign: sign, OneEvent: b.t.OneEvent,
		NoGrip: s.route.NoGrip, TrustedClient: s.trusted})
	b.c = c
	if e := s.debug(); e != nil {
		e.Str("uri", b.uri).Str("target", targetName(b.t)).Msg("websocket-over-http to backend")
	}
	b.run(acts)
}

// run carries out the Conn's actions in order.
func (b *wsWOH) run(acts []woh.Action) {
	s := b.s
	for _, a := range acts {
		if s.be != b || s.ph == wsDone {
			return // failed over to the next target, or over
		}
		switch a := a.(type) {
		case woh.SendRequest:
			b.request(a)
		case woh.Accept:
			s.accepted("Switching Protocols", a.Headers, a.Grip, nil)
		case woh.Reject:
			b.finish()
			s.reject(a.Code, a.Reason, a.Headers, a.Body)
		case woh.OpenFailed:
			b.finish()
			if a.TryNext {
				s.bkFailed("remote-connection-failed", nil)
			} else {
				s.reject502("Error while proxying to origin: " + a.Err.Error())
			}
		case woh.Deliver:
			b.deliver(a)
		case woh.Control:
			s.gripControl(a.JSON)
		case woh.Subscribe:
			s.ctlSubscribe(a.Channel)
		case woh.CloseClient:
			s.bkClosed(a.Code, []byte(a.Reason))
		case woh.DropClient:
			s.lg().Info().Err(a.Err).Msg("websocket-over-http: dropping client")
			b.finish()
			s.bkGone()
		case woh.CreditClient:
			s.cCredit += a.N
		case woh.Finished:
			b.finish()
			if s.cGone {
				s.end()
			}
		}
	}
}

// deliver queues a backend message for the client in frames of at most
// wohFrameMax bytes.
func (b *wsWOH) deliver(a woh.Deliver) {
	k := wsText
	switch a.Type {
	case wsevents.Binary:
		k = wsBinary
	case wsevents.Ping:
		k = wsPing
	case wsevents.Pong:
		k = wsPong
	}
	b.pending += len(a.Data)
	data, cont := a.Data, false
	for {
		n := len(data)
		if k == wsText || k == wsBinary {
			n = min(n, wohFrameMax)
		}
		more := n < len(data)
		b.s.bkFrame(wsFrame{kind: k, cont: cont, more: more, data: data[:n]})
		if !more {
			return
		}
		data, cont = data[n:], true
	}
}

// request sends one HTTP request of the Conn to zurl.
func (b *wsWOH) request(a woh.SendRequest) {
	s := b.s
	b.endReq()
	z := newStream(newUUID(), "", time.Now().UnixNano())
	b.z, b.zIn, b.gotHead = z, 0, false
	s.px.wsZ.add(z.id, s)
	s.zcur.Store(z)
	p := zhttp.Packet{
		Method: "POST", URI: b.uri, Headers: a.Headers, HasHeaders: true, Body: a.Body,
		Stream: true, Credits: initCredits, HasCredits: true, Ext: zhttp.Ext{Multi: true},
		ConnectHost: b.t.Host, ConnectPort: int64(b.t.Port),
		IgnorePolicies: !b.t.Untrusted, IgnoreTLSErrors: b.t.Insecure, TrustConnectHost: b.t.TrustConnectHost,
	}
	if p.Body == nil {
		p.Body = []byte{}
	}
	s.px.zw.write(&outItem{st: z, pkt: p, push: true})
}

// endReq forgets the request in flight (it ended, or a new one replaces it).
func (b *wsWOH) endReq() {
	if z := b.z; z != nil {
		z.ka.Store(false)
		b.s.px.wsZ.del(z.id, b.s)
		b.s.zcur.CompareAndSwap(z, nil)
		b.z = nil
	}
}

func (b *wsWOH) finish() {
	b.done = true
}

func (b *wsWOH) onZurl(p *zhttp.Packet) {
	z := b.z
	if z == nil || p.ID != z.id {
		return
	}
	now := time.Now()
	z.lastIn.Store(now.UnixNano())
	if p.Type != zhttp.Cancel && p.Type != zhttp.Error && p.Seq != b.zIn {
		b.s.debug().Int64("expected", b.zIn).Int64("got", p.Seq).Msg("backend: bad seq")
		if z.to != "" {
			b.s.px.zw.write(&outItem{st: z, pkt: zhttp.Packet{Type: zhttp.Cancel}, final: true})
		}
		b.endReq()
		b.run(b.c.RequestFailed(now, true))
		return
	}
	b.zIn++
	if z.to == "" && p.Type != zhttp.Cancel && p.Type != zhttp.Error && p.From != "" {
		z.to, z.multi = p.From, p.Ext.Multi
		z.ka.Store(true)
	}
	switch p.Type {
	case zhttp.Error:
		b.endReq()
		b.run(b.c.RequestFailed(now, !connectFailure(p.Condition)))
	case zhttp.Cancel:
		b.endReq()
		b.run(b.c.RequestFailed(now, true))
	case zhttp.Data:
		if !b.gotHead {
			if !p.HasCode {
				b.endReq()
				b.run(b.c.RequestFailed(now, true))
				return
			}
			b.gotHead = true
			b.run(b.c.ResponseHead(int(p.Code), p.Reason, p.Headers))
			if b.z != z {
				return
			}
		}
		if p.More {
			if len(p.Body) > 0 && z.to != "" {
				b.s.px.zw.write(&outItem{st: z, pkt: zhttp.Packet{Type: zhttp.Credit, Credits: int64(len(p.Body)), HasCredits: true}})
			}
		} else {
			b.endReq()
		}
		b.run(b.c.ResponseBody(now, p.Body, !p.More))
	}
}

func (b *wsWOH) writable() bool { return !b.done && b.c.Accepted() }

// room: the Conn keeps its own window (it withholds the client's credits).
func (b *wsWOH) room() int64 { return math.MaxInt64 }

func (b *wsWOH) send(f wsFrame) int {
	t := wsevents.Text
	switch f.kind {
	case wsBinary:
		t = wsevents.Binary
	case wsPing:
		t = wsevents.Ping
	case wsPong:
		t = wsevents.Pong
	}
	b.run(b.c.ClientFrame(t, f.data, !f.more))
	return 0
}

func (b *wsWOH) close(code int, reason []byte) { b.run(b.c.ClientClose(code, string(reason))) }
func (b *wsWOH) detach()                       { b.run(b.c.Detach()) }
func (b *wsWOH) gone()                         { b.run(b.c.ClientGone()) }
func (b *wsWOH) refresh()                      { b.run(b.c.Refresh()) }
func (b *wsWOH) ended() bool                   { return b.done }

func (b *wsWOH) credit(n int) {
	b.pending = max(b.pending-n, 0)
	b.run(b.c.SetPendingToClient(b.pending))
}

// abort lets the Conn go when the session ends: DISCONNECT unless it is
// over. A request in flight is left to finish (it may be the final
// CLOSE); its packets find no session and are dropped.
func (b *wsWOH) abort() {
	if b.done {
		b.endReq()
		return
	}
	b.done = true
	for _, a := range b.c.ClientGone() {
		if r, ok := a.(woh.SendRequest); ok {
			b.request(r)
		}
	}
	b.endReq()
}

func (b *wsWOH) due() int64 {
	if b.done {
		return 0
	}
	if t := b.c.NextDeadline(); !t.IsZero() {
		return t.UnixNano()
	}
	return 0
}

func (b *wsWOH) tick(now int64) { b.run(b.c.Tick(time.Unix(0, now))) }

func (b *wsWOH) expired() {
	b.endReq()
	b.run(b.c.RequestFailed(time.Now(), true))
}

// wohClientEvents reports a client that itself speaks WebSocket-over-HTTP
// (its events would reach the backend as ours).
func wohClientEvents(h zhttp.Headers) bool {
	return strings.EqualFold(strings.TrimSpace(strings.SplitN(h.Get("Content-Type"), ";", 2)[0]), wsevents.ContentType)
}
