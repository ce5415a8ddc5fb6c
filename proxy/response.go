package proxy

import (
	"strconv"
	"strings"

	"github.com/pushpin-go/pushpin/proto/grip"
	"github.com/pushpin-go/pushpin/proto/handoff"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// onBackendData takes one response data packet (from zurl, or the whole
// response of the test backend).
func (s *session) onBackendData(p *zhttp.Packet) {
	if s.ph != phRequest && s.ph != phRelay && s.ph != phGrip {
		return
	}
	if !s.gotHead {
		if !p.HasCode {
			s.cancelZurl()
			s.proxyError("backend response without a status")
			return
		}
		s.gotHead = true
		s.code, s.reason, s.respHeaders = int(p.Code), p.Reason, p.Headers
		if !s.route.NoGrip && !s.trusted && grip.IsGRIP(p.Headers) {
			s.ph = phGrip
		} else {
			s.ph = phRelay
			s.outHead = relayHeaders(p.Headers)
		}
	}
	if !p.More {
		s.closeZ()
	}
	switch s.ph {
	case phRelay:
		if len(p.Body) > 0 {
			s.respQ = append(s.respQ, p.Body)
		}
		s.respEnd = !p.More
		s.pumpResponse()
	case phGrip:
		s.gripBuf = append(s.gripBuf, p.Body...)
		if len(s.gripBuf) > maxGripBody {
			s.gripTooLarge(!p.More)
			return
		}
		if !p.More {
			s.gripDone()
		}
	}
}

// pumpResponse sends the response head and queued body within the
// client's credits, and returns the consumed bytes to zurl as credits so
// that at most initCredits bytes are ever buffered here.
func (s *session) pumpResponse() {
	if s.ph != phRelay {
		return
	}
	sent := 0
	for {
		var p zhttp.Packet
		if !s.headSent {
			p.Code, p.HasCode, p.Reason = int64(s.code), true, s.reason
			p.Headers, p.HasHeaders = s.outHead, true
		}
		if len(s.respQ) > 0 && s.credits > 0 {
			c := s.respQ[0]
			k := min(int64(len(c)), s.credits)
			p.Body = c[:k]
			if int(k) == len(c) {
				s.respQ = s.respQ[1:]
			} else {
				s.respQ[0] = c[k:]
			}
			s.credits -= k
			sent += int(k)
		}
		last := s.respEnd && len(s.respQ) == 0
		if s.headSent && p.Body == nil && !last {
			break // nothing to send until more credits or data arrive
		}
		if last && s.handoffAfter {
			if p.Body != nil || !s.headSent {
				p.More = true
				s.headSent = true
				s.sendClient(p, false)
			}
			s.startHandoff(true)
			return
		}
		s.headSent = true
		p.More = !last
		s.sendClient(p, last)
		if last {
			s.cancelZurl()
			s.end()
			return
		}
	}
	if sent > 0 && s.z != nil && !s.zEnded {
		s.px.zw.write(&outItem{st: s.z, pkt: zhttp.Packet{Type: zhttp.Credit, Credits: int64(sent), HasCredits: true}})
	}
}

// respondText answers with a complete text/plain response of our own
// (errors), unless a response is already under way, which is then canceled.
func (s *session) respondText(code int, reason, body string) {
	s.cancelZurl()
	if s.headSent {
		s.sendClient(zhttp.Packet{Type: zhttp.Cancel}, true)
		s.end()
		return
	}
	s.ph = phRelay
	s.gotHead = true
	s.code, s.reason = code, reason
	s.outHead = zhttp.Headers{{Name: "Content-Type", Value: "text/plain"}}
	s.respQ = [][]byte{[]byte(body)}
	s.respEnd = true
	s.handoffAfter = false
	s.gripBuf = nil
	s.pumpResponse()
}

// proxyError is Pushpin's 502; routes with `debug` (or [proxy] debug) get
// the reason as the body.
func (s *session) proxyError(detail string) {
	body := textProxyError
	if s.px.cfg.Proxy.Debug || (s.route != nil && s.route.Debug) {
		body = detail + "\n"
	}
	s.respondText(502, "Bad Gateway", body)
}

// gripDone interprets a complete buffered GRIP response.
func (s *session) gripDone() {
	ins, err := grip.ParseResponse(s.code, s.reason, s.respHeaders, s.gripBuf, grip.Options{ChannelPrefix: s.route.Prefix})
	if err != nil {
		s.lg().Info().Err(err).Msg("invalid GRIP response")
		s.proxyError(err.Error())
		return
	}
	if ins.Hold == grip.HoldNone && ins.NextLink == "" {
		r := ins.Response
		s.code, s.reason = r.Code, r.Reason
		s.outHead = relayHeaders(r.Headers).Set("Content-Length", strconv.Itoa(len(r.Body)))
		s.respQ = s.respQ[:0]
		if len(r.Body) > 0 {
			s.respQ = append(s.respQ, r.Body)
		}
		s.respEnd = true
		s.ph = phRelay
		s.pumpResponse()
		return
	}
	s.startHandoff(false)
}

// gripTooLarge handles a GRIP response whose body passed maxGripBody: a
// stream hold (or next-link-only response) is relayed by us and then handed
// off with response-sent; anything else is a 502 (grip.md §6.3).
func (s *session) gripTooLarge(complete bool) {
	t := &s.route.Targets[s.target]
	tooLarge := "GRIP instruct response too large from " + targetName(t)
	ct := grip.SingleParams(s.respHeaders, "Content-Type")
	if ct != nil && strings.EqualFold(ct.First(), grip.InstructContentType) {
		s.cancelZurl()
		s.proxyError(tooLarge)
		return
	}
	ins, err := grip.ParseResponse(s.code, s.reason, s.respHeaders, nil, grip.Options{ChannelPrefix: s.route.Prefix})
	if err != nil {
		s.cancelZurl()
		s.proxyError(err.Error())
		return
	}
	ok := ins.Hold == grip.HoldStream || (ins.Hold == grip.HoldNone && ins.NextLink != "")
	for _, c := range ins.Channels {
		for _, f := range c.Filters {
			if f == "build-id" {
				ok = false
			}
		}
	}
	if !ok {
		s.cancelZurl()
		s.proxyError(tooLarge)
		return
	}
	code, reason, h, err := grip.ClientHead(s.code, s.reason, s.respHeaders)
	if err != nil {
		s.cancelZurl()
		s.proxyError(err.Error())
		return
	}
	s.code, s.reason = code, reason
	s.outHead = relayHeaders(h).Del("Content-Length")
	s.ph = phRelay
	s.handoffAfter = true
	s.respQ = append(s.respQ[:0], s.gripBuf)
	s.gripBuf = nil
	s.respEnd = complete
	s.pumpResponse()
}

// startHandoff asks the connection manager to let go of the session
// (zhttp.md §10); the Accept goes out on handoff-proceed.
func (s *session) startHandoff(responseSent bool) {
	s.respSent = responseSent
	s.ph = phHandoff
	s.client.ka.Store(false)
	s.sendClient(zhttp.Packet{Type: zhttp.HandoffStart}, true)
}

// sendAccept passes the session to the handler and forgets it.
func (s *session) sendAccept() {
	r, t := s.route, &s.route.Targets[s.target]
	body := s.gripBuf
	if s.respSent {
		body = nil
	}
	a := handoff.Accept{
		Sessions: []handoff.Session{{
			Sender: s.first.From, ID: s.first.ID,
			InSeq: s.inSeq, OutSeq: s.client.outSeq.Load(), OutCredits: s.credits,
			Multi: s.multi, MultiData: s.mdata, PeerAddress: s.first.PeerAddress, HTTPS: s.https, UserData: s.userData,
		}},
		Request: handoff.HTTPData{Method: s.first.Method, URI: s.outURI, Headers: s.outHeaders, Body: s.retained},
		Response: handoff.HTTPData{Code: int64(s.code), Reason: s.reason, Headers: s.respHeaders,
			Body: body},
		ResponseSent:    s.respSent,
		Route:           r.ID,
		ChannelPrefix:   r.Prefix,
		Channels:        t.Subscriptions,
		Trusted:         !t.Untrusted,
		Debug:           s.px.cfg.Proxy.Debug || r.Debug,
		AutoCrossOrigin: s.px.cfg.Proxy.AutoCrossOrigin || r.AutoCrossOrigin,
	}
	s.px.accept.SendEncoded(s.px.ctx, a.AppendMessage)
	s.debug().Msg("handed off to handler")
	s.end()
}
