package proxy

import (
	"strings"
	"time"

	"github.com/pushpin-go/pushpin/configs/routing"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// startRequest routes the request and opens the first target.
func (s *session) startRequest() {
	p := s.first
	scheme, host, rest, ok := splitURI(p.URI)
	if !ok {
		s.sendClient(zhttp.Packet{Type: zhttp.Error, Condition: "bad-request"}, true)
		s.end()
		return
	}
	s.https = scheme == "https" || scheme == "wss"
	s.host = host
	r, ok := s.px.route(p.Headers, host, rest, false, s.https)
	if !ok {
		s.lg().Info().Str("host", host).Msg("no route")
		s.respondText(502, "Bad Gateway", textNoRoute+hostOnly(host)+"\n")
		return
	}
	s.route = r
	s.rest = rewritePath(rest, r)
	s.trusted = s.px.rw.isTrusted(p.Headers)
	s.logger = nil // remade with the route
	s.tryTarget(0)
}

// tryTarget opens target i or a later usable one; with none left the client
// gets a 502.
func (s *session) tryTarget(i int) {
	r := s.route
	for ; i < len(r.Targets); i++ {
		t := &r.Targets[i]
		if t.Type != routing.TargetHTTP && t.Type != routing.TargetTest {
			// zhttp/ and zhttpreq/ targets are not implemented: treat them
			// as unreachable so failover still works.
			s.lg().Warn().Str("target", targetName(t)).Msg("target type not supported")
			s.tried = append(s.tried, targetName(t))
			continue
		}
		s.target = i
		host, hdrs, err := s.px.targetRequest(s.first, r, t, s.host, s.https, s.trusted)
		if err != nil {
			s.lg().Error().Err(err).Msg("rewriting request")
			s.proxyError(err.Error())
			return
		}
		s.outURI = targetURI(t, host, s.rest)
		s.outHeaders = hdrs
		if t.Type == routing.TargetTest {
			s.pumpRequest()
			return
		}
		if s.bufferBody() {
			s.holdBody = true
			return
		}
		s.startZurl(t)
		return
	}
	s.proxyError("Unable to connect to any targets. Tried: " + strings.Join(s.tried, ", "))
}

// bufferBody reports whether the backend request must wait for more of
// the client's body: one without Content-Length (chunked) is gathered up to
// MaxBufferedBody, so that a complete body goes in the first packet and
// zurl sends it with Content-Length. The client's initial credits
// (initCredits) leave room for more than the limit, so it is never
// stalled while we wait.
func (s *session) bufferBody() bool {
	if s.reqDone || s.first.Headers.Get("Content-Length") != "" {
		return false
	}
	n := 0
	for _, c := range s.reqQ {
		n += len(c)
	}
	return n <= MaxBufferedBody
}

// releaseBody starts the held backend request once the body is complete
// or past the limit.
func (s *session) releaseBody() {
	if s.bufferBody() {
		return
	}
	s.holdBody = false
	s.startZurl(&s.route.Targets[s.target])
}

func (s *session) isTest() bool {
	return s.route != nil && s.route.Targets[s.target].Type == routing.TargetTest
}

// startZurl sends the first packet of a new outbound request. On failover
// it carries the whole body retained so far (Pushpin's client may send up
// to its initial buffer without credits).
func (s *session) startZurl(t *routing.Target) {
	now := time.Now().UnixNano()
	z := newStream(newUUID(), "", now)
	s.z, s.zIn, s.zCredits, s.zEnded, s.reqSentEnd = z, 0, 0, false, false
	s.px.zsessions.add(z.id, s)
	s.zcur.Store(z)
	p := zhttp.Packet{
		Method: s.first.Method, URI: s.outURI, Headers: s.outHeaders, HasHeaders: true,
		Stream: true, Credits: initCredits, HasCredits: true, Ext: zhttp.Ext{Multi: true},
		ConnectHost: t.Host, ConnectPort: int64(t.Port),
		IgnorePolicies: !t.Untrusted, IgnoreTLSErrors: t.Insecure, TrustConnectHost: t.TrustConnectHost,
	}
	body := append([]byte(nil), s.retained...)
	fwd := 0
	for _, c := range s.reqQ {
		if len(body)+len(c) > initCredits {
			break
		}
		body = append(body, c...)
		s.retain(c)
		fwd += len(c)
		s.reqQ = s.reqQ[1:]
	}
	if len(body) > 0 {
		p.Body = body
	}
	p.More = !(s.reqDone && len(s.reqQ) == 0)
	s.reqSentEnd = !p.More
	s.px.zw.write(&outItem{st: z, pkt: p, push: true})
	s.creditClient(fwd)
	if e := s.debug(); e != nil {
		e.Str("zid", z.id).Str("uri", s.outURI).Str("target", targetName(t)).Msg("request to backend")
	}
}

func (s *session) retain(b []byte) {
	if !s.retainAll {
		return
	}
	if len(s.retained)+len(b) > maxRetained {
		s.retainAll = false
		return
	}
	s.retained = append(s.retained, b...)
}

// creditClient gives the client back n request body bytes of allowance.
func (s *session) creditClient(n int) {
	if n > 0 && !s.reqDone {
		s.sendClient(zhttp.Packet{Type: zhttp.Credit, Credits: int64(n), HasCredits: true}, false)
	}
}

// pumpRequest forwards queued request body within the backend's credits.
func (s *session) pumpRequest() {
	if s.route == nil || s.reqSentEnd || s.ph == phDone {
		return
	}
	if s.isTest() {
		n := 0
		for _, c := range s.reqQ {
			s.retain(c)
			n += len(c)
		}
		s.reqQ = s.reqQ[:0]
		s.creditClient(n)
		if s.reqDone {
			s.reqSentEnd = true
			s.testRespond()
		}
		return
	}
	z := s.z
	if z == nil || z.to == "" || s.zEnded {
		return
	}
	s.trace().Int("queued", len(s.reqQ)).Int64("credits", s.zCredits).Bool("done", s.reqDone).Msg("pump request")
	fwd := 0
	for len(s.reqQ) > 0 && s.zCredits > 0 {
		c := s.reqQ[0]
		k := min(int64(len(c)), s.zCredits)
		chunk := c[:k]
		if int(k) == len(c) {
			s.reqQ = s.reqQ[1:]
		} else {
			s.reqQ[0] = c[k:]
		}
		s.zCredits -= k
		fwd += int(k)
		s.retain(chunk)
		last := s.reqDone && len(s.reqQ) == 0
		s.px.zw.write(&outItem{st: z, pkt: zhttp.Packet{Body: chunk, More: !last}})
		s.reqSentEnd = last
	}
	if s.reqDone && len(s.reqQ) == 0 && !s.reqSentEnd {
		s.px.zw.write(&outItem{st: z, pkt: zhttp.Packet{}})
		s.reqSentEnd = true
	}
	s.creditClient(fwd)
}

func (s *session) handleZurl(p *zhttp.Packet) {
	s.trace().Str("type", string(p.Type)).Int64("seq", p.Seq).Msg("from backend")
	z := s.z
	if z == nil || p.ID != z.id || s.zEnded {
		return
	}
	z.lastIn.Store(time.Now().UnixNano())
	if p.Type != zhttp.Cancel && p.Type != zhttp.Error && p.Seq != s.zIn {
		s.debug().Int64("expected", s.zIn).Int64("got", p.Seq).Msg("backend: bad seq")
		s.cancelZurl()
		s.onBackendError("bad-seq")
		return
	}
	s.zIn++
	if z.to == "" {
		if p.From == "" {
			s.debug().Msg("backend reply without from")
			s.closeZ()
			s.onBackendError("bad-format")
			return
		}
		z.to, z.multi = p.From, p.Ext.Multi
		z.ka.Store(true)
	}
	if p.HasCredits {
		s.zCredits += p.Credits
	}
	switch p.Type {
	case zhttp.Error:
		s.closeZ()
		s.onBackendError(p.Condition)
		return
	case zhttp.Cancel:
		s.closeZ()
		s.onBackendError("disconnected")
		return
	case zhttp.Data:
		s.onBackendData(p)
	}
	s.pumpRequest()
}

// closeZ forgets the current outbound request (it ended or was canceled).
func (s *session) closeZ() {
	if z := s.z; z != nil {
		z.ka.Store(false)
		s.px.zsessions.del(z.id, s)
		s.zcur.Store(nil)
		s.zEnded = true
	}
}

// cancelZurl aborts the outbound request if it is still running.
func (s *session) cancelZurl() {
	z := s.z
	if z == nil || s.zEnded {
		return
	}
	if z.to != "" {
		s.px.zw.write(&outItem{st: z, pkt: zhttp.Packet{Type: zhttp.Cancel}, final: true})
	}
	s.closeZ()
}

// connectFailure lists the conditions that make the proxy try the next
// target (zhttp.md §8).
func connectFailure(cond string) bool {
	switch cond {
	case "remote-connection-failed", "connection-timeout", "tls-error":
		return true
	}
	return false
}

// onBackendError handles the end of the outbound request without a
// (complete) response.
func (s *session) onBackendError(cond string) {
	if s.ph == phDone || s.ph == phHandoff {
		return
	}
	if s.gotHead {
		if s.headSent {
			s.sendClient(zhttp.Packet{Type: zhttp.Cancel}, true)
			s.end()
			return
		}
		s.proxyError("backend error: " + cond)
		return
	}
	t := &s.route.Targets[s.target]
	if e := s.debug(); e != nil {
		e.Str("target", targetName(t)).Str("condition", cond).Msg("backend request failed")
	}
	switch {
	case connectFailure(cond):
		s.tried = append(s.tried, targetName(t))
		if s.retainAll {
			s.tryTarget(s.target + 1)
			return
		}
		s.proxyError("Unable to connect to any targets. Tried: " + strings.Join(s.tried, ", "))
	case cond == "length-required":
		s.respondText(411, "Length Required", textLengthNeeded)
	default:
		s.proxyError("Error while proxying to origin: " + cond)
	}
}

// targetRequest is what a request to target t of route r is made of, for
// HTTP and WebSocket sessions alike: the host it goes to (the route's
// as_host or the target's host header override the client's) and the
// client's headers after the proxy's rules, signed unless the route says
// no_grip.
func (px *Proxy) targetRequest(first *zhttp.Packet, r *routing.Route, t *routing.Target, clientHost string, https, trusted bool) (string, zhttp.Headers, error) {
	host, hostHdr := clientHost, ""
	if r.AsHost != "" {
		host, hostHdr = r.AsHost, r.AsHost
	}
	if t.HostHeader != "" {
		host, hostHdr = t.HostHeader, t.HostHeader
	}
	in := rewriteIn{peer: first.PeerAddress, https: https, host: hostHdr, headers: r.Headers, trusted: trusted}
	if !r.NoGrip {
		in.signer = px.signerFor(r)
	}
	hdrs, err := px.rw.request(first.Headers, &in)
	return host, hdrs, err
}

// route picks the route of a request to host with path and query rest:
// the one a Pushpin-Route header names when accept_pushpin_route is on and
// the id exists, else the first that matches.
func (px *Proxy) route(h zhttp.Headers, host, rest string, ws, https bool) (*routing.Route, bool) {
	tbl := px.routes.Current()
	if px.cfg.Proxy.AcceptPushpinRoute {
		if id := h.Get("Pushpin-Route"); id != "" {
			if r, ok := tbl.ByID(id); ok {
				return r, true
			}
		}
	}
	return tbl.Match(host, pathOf(rest), ws, https)
}
