package zurl

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// session is one outbound request. run owns the inbound side (packets from
// the requester); the response pump runs in its own goroutine. mu guards
// the out-seq (so every packet leaves in seq order), the requester's credits
// and the request body queue.
type session struct {
	srv    *Server
	key    string
	from   string
	id     string
	first  *zhttp.Packet
	inbox  chan *zhttp.Packet
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	cond     *sync.Cond
	outSeq   int64
	credits  int64 // response body bytes the requester can take
	multi    bool
	lastOut  time.Time
	finished bool

	body        *bodyQueue // request body fed by data packets
	stopTimeout context.CancelFunc
}

func newSession(s *Server, p *zhttp.Packet) *session {
	ss := &session{srv: s, key: p.From + "\x00" + p.ID, from: p.From, id: p.ID, first: p,
		inbox: make(chan *zhttp.Packet, 256), credits: p.Credits, multi: p.Ext.Multi, lastOut: time.Now()}
	ss.cond = sync.NewCond(&ss.mu)
	return ss
}

// deliver queues a packet from the ROUTER goroutine; a requester that
// floods a stuck session loses the session, not the process.
func (ss *session) deliver(p *zhttp.Packet) {
	select {
	case ss.inbox <- p:
	default:
		ss.srv.log.Warn().Str("id", ss.id).Msg("session inbox full, cancelling")
		ss.cancel()
	}
}

// send stamps and sends a packet; final marks the session's last packet.
func (ss *session) send(p *zhttp.Packet, final bool) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.finished {
		return false
	}
	p.ID, p.Seq, p.HasSeq = ss.id, ss.outSeq, true
	if ss.multi && ss.outSeq == 0 {
		p.Ext.Multi = true
	}
	ss.outSeq++
	ss.lastOut = time.Now()
	if final {
		ss.finished = true
		ss.cond.Broadcast()
	}
	ss.srv.reply(ss.from, p)
	return true
}

func (ss *session) run(parent context.Context) {
	ss.ctx, ss.cancel = context.WithCancel(parent)
	defer ss.srv.done(ss)
	defer ss.cancel()
	p := ss.first
	ss.body = newBodyQueue(func(n int) {
		ss.send(&zhttp.Packet{Type: zhttp.Credit, Credits: int64(n), HasCredits: true}, false)
	})
	if len(p.Body) > 0 {
		ss.body.push(p.Body, !p.More)
	} else if !p.More {
		ss.body.push(nil, true)
	}
	// Ack at once, as Pushpin's zhttp servers do.
	if p.More {
		ss.send(&zhttp.Packet{Type: zhttp.Credit, Credits: int64(ss.srv.cfg.BufferSize), HasCredits: true}, false)
	} else {
		ss.send(&zhttp.Packet{Type: zhttp.KeepAlive}, false)
	}
	done := make(chan struct{})
	go func() { defer close(done); ss.do() }()

	inSeq := int64(1)
	lastIn := time.Now()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-ss.ctx.Done():
			<-done
			return
		case q := <-ss.inbox:
			lastIn = time.Now()
			if q.Type == zhttp.Cancel || q.Type == zhttp.Error {
				ss.cancel()
				continue
			}
			if q.HasSeq && q.Seq != inSeq {
				ss.srv.log.Warn().Str("id", ss.id).Int64("seq", q.Seq).Int64("want", inSeq).Msg("out of sequence, cancelling")
				ss.send(&zhttp.Packet{Type: zhttp.Cancel}, true)
				ss.cancel()
				continue
			}
			inSeq++
			if q.Credits > 0 {
				ss.mu.Lock()
				ss.credits += q.Credits
				ss.cond.Broadcast()
				ss.mu.Unlock()
			}
			if q.Type == zhttp.Data {
				ss.body.push(q.Body, !q.More)
			}
		case now := <-tick.C:
			if now.Sub(lastIn) > sessionExpiry {
				ss.srv.log.Info().Str("id", ss.id).Msg("session expired")
				ss.cancel()
				continue
			}
			ss.mu.Lock()
			idle := now.Sub(ss.lastOut)
			ss.mu.Unlock()
			if idle >= keepAliveInterval {
				ss.send(&zhttp.Packet{Type: zhttp.KeepAlive}, false)
			}
		}
	}
}

// do makes the HTTP request and pumps the response within credits.
func (ss *session) do() {
	p := ss.first
	defer func() { // wake a pump blocked on credits when the session ends
		ss.mu.Lock()
		ss.cond.Broadcast()
		ss.mu.Unlock()
	}()
	go func() { <-ss.ctx.Done(); ss.body.close(); ss.mu.Lock(); ss.cond.Broadcast(); ss.mu.Unlock() }()
	req, client, err := ss.build(p)
	if ss.stopTimeout != nil {
		defer ss.stopTimeout()
	}
	if err != nil {
		ss.fail("bad-request")
		return
	}
	resp, err := client.Do(req)
	if err != nil {
		if ss.ctx.Err() == nil {
			ss.srv.log.Info().Err(err).Str("uri", p.URI).Msg("request failed")
			ss.fail(condition(err))
		}
		return
	}
	defer resp.Body.Close()
	if p.MaxSize > 0 && resp.ContentLength > p.MaxSize {
		ss.fail("max-size-exceeded")
		return
	}
	first := &zhttp.Packet{HasCode: true, Code: int64(resp.StatusCode), Reason: reason(resp), HasHeaders: true,
		Headers: responseHeaders(resp)}
	buf := make([]byte, 32*1024)
	var total int64
	for {
		n := ss.waitCredits(len(buf))
		if n < 0 {
			return // cancelled
		}
		if first != nil && n == 0 {
			n = 0 // the header packet needs no credits
		}
		m, rerr := 0, error(nil)
		if n > 0 {
			m, rerr = io.ReadAtLeast(resp.Body, buf[:n], 1)
		}
		total += int64(m)
		if p.MaxSize > 0 && total > p.MaxSize {
			ss.fail("max-size-exceeded")
			return
		}
		end := errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) && m == 0
		if rerr != nil && !end {
			if ss.ctx.Err() == nil {
				ss.fail("undefined-condition")
			}
			return
		}
		pkt := first
		if pkt == nil {
			pkt = &zhttp.Packet{}
		}
		first = nil
		pkt.Body = append([]byte{}, buf[:m]...)
		pkt.More = !end
		ss.mu.Lock()
		ss.credits -= int64(m)
		ss.mu.Unlock()
		ss.send(pkt, end)
		if end {
			return
		}
	}
}

// waitCredits blocks until the requester can take body bytes and returns
// how many (≤ limit); -1 when the session ended.
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

func (ss *session) fail(cond string) {
	ss.send(&zhttp.Packet{Type: zhttp.Error, Condition: cond}, true)
}

func (ss *session) build(p *zhttp.Packet) (*http.Request, *http.Client, error) {
	u, err := url.Parse(p.URI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, nil, errors.New("bad uri")
	}
	host := u.Host
	dial := u.Host
	if p.ConnectHost != "" || p.ConnectPort != 0 {
		h, port := u.Hostname(), u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		if p.ConnectHost != "" {
			h = p.ConnectHost
		}
		if p.ConnectPort != 0 {
			port = strconv.FormatInt(p.ConnectPort, 10)
		}
		dial = net.JoinHostPort(h, port)
	}
	ctx := ss.ctx
	if p.Timeout > 0 {
		ctx, ss.stopTimeout = context.WithTimeout(ctx, time.Duration(p.Timeout)*time.Millisecond)
	}
	var body io.Reader = ss.body
	req, err := http.NewRequestWithContext(ctx, p.Method, u.String(), body)
	if err != nil {
		return nil, nil, err
	}
	req.URL.Host = dial // connect here; Host header and SNI keep the URI's host
	req.Host = host
	req.ContentLength = -1
	for _, h := range p.Headers {
		switch strings.ToLower(h.Name) {
		case "host", "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection":
			continue
		case "content-length":
			if n, err := strconv.ParseInt(h.Value, 10, 64); err == nil {
				req.ContentLength = n
			}
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	if req.ContentLength == 0 || (!p.More && len(p.Body) == 0 && req.ContentLength < 0) {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header["User-Agent"] = []string{""} // don't announce Go's client
	}
	sni := ""
	if u.Scheme == "https" && !p.TrustConnectHost {
		sni = u.Hostname()
	} else if u.Scheme == "https" {
		sni = p.ConnectHost
	}
	client := &http.Client{Transport: ss.srv.transport(p.IgnoreTLSErrors, sni)}
	if !p.FollowRedirects {
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	} else {
		client.CheckRedirect = func(_ *http.Request, via []*http.Request) error {
			if len(via) >= 8 {
				return errTooManyRedirects
			}
			return nil
		}
	}
	return req, client, nil
}

var errTooManyRedirects = errors.New("too many redirects")

// condition maps a request error to a zhttp error condition (zhttp.md §8).
func condition(err error) string {
	var ne net.Error
	var tlsRec tls.RecordHeaderError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certErr *tls.CertificateVerificationError
	switch {
	case errors.Is(err, errTooManyRedirects):
		return "too-many-redirects"
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "remote-connection-failed"
	case errors.As(err, &tlsRec), errors.As(err, &unknownAuth), errors.As(err, &hostErr), errors.As(err, &certErr):
		return "tls-error"
	case errors.As(err, &ne) && ne.Timeout():
		return "connection-timeout"
	}
	var dnsErr *net.DNSError
	var opErr *net.OpError
	if errors.As(err, &dnsErr) || (errors.As(err, &opErr) && opErr.Op == "dial") {
		return "remote-connection-failed"
	}
	return "undefined-condition"
}

func reason(resp *http.Response) string {
	if i := strings.IndexByte(resp.Status, ' '); i >= 0 {
		return resp.Status[i+1:]
	}
	return http.StatusText(resp.StatusCode)
}

// responseHeaders lists the response headers minus hop-by-hop ones.
func responseHeaders(resp *http.Response) zhttp.Headers {
	h := make(zhttp.Headers, 0, len(resp.Header)+1)
	for name, vals := range resp.Header {
		switch strings.ToLower(name) {
		case "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection":
			continue
		}
		for _, v := range vals {
			h = append(h, zhttp.Header{Name: name, Value: v})
		}
	}
	if resp.ContentLength >= 0 && resp.Header.Get("Content-Length") == "" && len(resp.TransferEncoding) == 0 {
		h = append(h, zhttp.Header{Name: "Content-Length", Value: strconv.FormatInt(resp.ContentLength, 10)})
	}
	return h
}
