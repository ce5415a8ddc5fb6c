package woh

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pushpin-go/pushpin/proto/grip"
	"github.com/pushpin-go/pushpin/proto/wsevents"
	"github.com/pushpin-go/pushpin/proto/zhttp"
	"github.com/pushpin-go/pushpin/proxy/internal/gripws"
)

// ResponseHead reports the status line and headers of the response to the
// request in flight. The body follows with ResponseBody.
func (c *Conn) ResponseHead(code int, reason string, headers zhttp.Headers) []Action {
	if !c.inflight || c.retryWait || c.phase == finished {
		return nil
	}
	c.respCode, c.respReason, c.respHeaders = code, reason, headers
	// Exact comparison: Pushpin takes no parameters, not even a charset.
	c.respOK = code == 200 && headers.Get("Content-Type") == wsevents.ContentType
	c.respBody = nil
	return nil
}

// ResponseBody reports a chunk of the response body (copied); done marks
// its end, when the response is acted on.
func (c *Conn) ResponseBody(now time.Time, chunk []byte, done bool) []Action {
	var out []Action
	if !c.inflight || c.retryWait || c.phase == finished || c.respCode == 0 {
		return out
	}
	switch {
	case c.respOK:
		if len(c.respBody)+len(chunk) > c.cfg.MaxResponseBody {
			c.fail(&out, fmt.Errorf("%w: over %d bytes", ErrBodyTooLarge, c.cfg.MaxResponseBody))
			return out
		}
		c.respBody = append(c.respBody, chunk...)
	case c.phase == opening:
		// Only what a rejection relays is kept; the rest is read and
		// discarded (Pushpin 1.36 failed the handshake on a large body).
		if room := RejectBodyMax - len(c.respBody); room > 0 {
			c.respBody = append(c.respBody, chunk[:min(room, len(chunk))]...)
		}
	}
	if done {
		c.complete(now, &out)
	}
	return out
}

// RequestFailed reports that the request in flight got no response.
// reachedBackend is false when it certainly did not reach the backend:
// connect error or timeout, TLS error, or its body not fully sent.
func (c *Conn) RequestFailed(now time.Time, reachedBackend bool) []Action {
	var out []Action
	if !c.inflight || c.retryWait || c.phase == finished {
		return out
	}
	c.respCode, c.respBody, c.respHeaders = 0, nil, nil
	if c.reqOpen {
		// The OPEN request is never retried: the caller fails over.
		if !c.gone {
			out = append(out, OpenFailed{TryNext: !reachedBackend, Err: ErrRequestFailed})
		}
		c.finish(&out)
		return out
	}
	if !reachedBackend && c.retries < MaxRetries {
		c.retryAt = now.Add(RetryBase<<c.retries + c.cfg.Jitter())
		c.retries++
		c.retryWait = true
		return out
	}
	c.fail(&out, fmt.Errorf("%w after %d retries", ErrRequestFailed, c.retries))
	return out
}

// fail ends the connection on an error: the client's handshake fails
// (502), or the client is dropped. A client already gone or detached is
// not touched.
func (c *Conn) fail(out *[]Action, err error) {
	switch {
	case c.gone || c.detached:
	case c.phase == opening:
		*out = append(*out, OpenFailed{Err: err})
	default:
		*out = append(*out, DropClient{Err: err})
	}
	c.finish(out)
}

// complete acts on a whole response, in Pushpin's order.
func (c *Conn) complete(now time.Time, out *[]Action) {
	h, body := c.respHeaders, c.respBody
	c.respBody = nil // Deliver data aliases it: never reuse it
	c.respHeaders = nil
	c.retries = 0
	c.reqBody = nil // answered: never sent again, and an idle connection keeps no body
	if c.discSent {
		c.finish(out) // the response to DISCONNECT is ignored
		return
	}
	if !c.respOK {
		if c.phase == opening && !c.gone {
			*out = append(*out, Reject{Code: c.respCode, Reason: c.respReason,
				Headers: rejectHeaders(h), Body: body})
			c.finish(out)
			return
		}
		c.fail(out, fmt.Errorf("%w: status %d, content type %q", ErrBadResponse, c.respCode, h.Get("Content-Type")))
		return
	}
	c.readControlHeaders(h)
	if err := c.acceptContent(h); err != nil {
		c.fail(out, err)
		return
	}
	evs, err := wsevents.Parse(body, c.evs[:0])
	// Not kept for the next response: an idle connection holds nothing.
	c.evs = nil
	if err != nil {
		c.fail(out, fmt.Errorf("%w: %w", ErrInvalidEvents, err))
		return
	}
	if c.phase == opening {
		if len(evs) == 0 && c.keepAlive == 0 || len(evs) > 0 && evs[0].Type != wsevents.Open {
			c.fail(out, ErrNoOpen)
			return
		}
	}
	closed, closeCode, closeText, drop := c.events(evs, h, out)
	c.inflight = false
	c.credit(out) // only accepted bytes left the window
	if c.reqClose {
		c.closeSent = true
	}
	switch {
	case closed && c.closeSent:
		// The backend answered our CLOSE: a clean close.
		if !c.detached && !c.gone && !c.clientCl {
			*out = append(*out, CloseClient{Code: closeCode, Reason: closeText})
			c.clientCl = true
		}
		c.finish(out)
		return
	case closed:
		c.peerClose = true
		if !c.detached && !c.gone && !c.clientCl {
			*out = append(*out, CloseClient{Code: closeCode, Reason: closeText})
			c.clientCl = true
		}
	case c.closeSent && c.keepAlive == 0 && drop == nil && !c.peerClose:
		// Without keep-alives the backend had one chance to answer the
		// close; it did not. (After its own CLOSE, ours is the last word:
		// Pushpin counted an empty answer as an error there too.)
		drop = ErrUncleanClose
	}
	if drop != nil {
		c.fail(out, drop)
		return
	}
	if c.reqClose && c.peerClose {
		c.finish(out) // the final CLOSE after the client echoed the backend's
		return
	}
	if c.needSend() {
		c.send(out)
	} else if c.keepAlive > 0 {
		c.kaAt = now.Add(time.Duration(c.keepAlive) * time.Second)
	}
}

// readControlHeaders applies Keep-Alive-Interval (last value received wins;
// absent keeps the old one) and Set-Meta-*.
func (c *Conn) readControlHeaders(h zhttp.Headers) {
	if h.Has("Keep-Alive-Interval") {
		x, err := strconv.Atoi(strings.TrimSpace(h.Get("Keep-Alive-Interval")))
		switch {
		case err != nil || x <= 0:
			c.keepAlive = 0
		default:
			c.keepAlive = max(x, MinKeepAlive)
		}
	}
	for _, x := range h {
		if len(x.Name) <= 9 || !strings.EqualFold(x.Name[:9], "Set-Meta-") {
			continue
		}
		name := x.Name[9:]
		kept := c.meta[:0]
		for _, m := range c.meta {
			if !strings.EqualFold(m.name, name) {
				kept = append(kept, m)
			}
		}
		c.meta = kept
		if x.Value != "" {
			// Cloned: the response's strings share its packet's arena.
			c.meta = append(c.meta, meta{name: strings.Clone(name), value: strings.Clone(x.Value)})
		}
	}
}

// events acts on a response's events up to the first CLOSE, DISCONNECT or
// misplaced OPEN.
func (c *Conn) events(evs []wsevents.Event, h zhttp.Headers, out *[]Action) (closed bool, code int, reason string, drop error) {
	quiet := c.detached || c.gone // nobody to tell
	for _, e := range evs {
		switch e.Type {
		case wsevents.Open:
			if c.phase != opening {
				return false, 0, "", ErrUnexpectedOpen
			}
			c.phase = open
			if !quiet {
				c.accept(h, out)
			}
		case wsevents.Text, wsevents.Binary:
			if quiet {
				continue
			}
			v, data := c.filter.Message(e.Type == wsevents.Binary, e.Content)
			switch v {
			case gripws.Pass:
				*out = append(*out, Deliver{Type: e.Type, Data: data})
			case gripws.Control:
				*out = append(*out, Control{JSON: data})
			}
		case wsevents.Ping, wsevents.Pong:
			if !quiet {
				*out = append(*out, Deliver{Type: e.Type, Data: e.Content})
			}
		case wsevents.Close:
			code, reason = wsevents.CloseCode(e.Content)
			return true, code, reason, nil
		case wsevents.Disconnect:
			return false, 0, "", ErrDisconnect
		}
	}
	return false, 0, "", nil
}

// accept returns Accept (and Subscribe for Grip-Channel) from the OPEN
// response's headers, and enables the GRIP filter.
func (c *Conn) accept(h zhttp.Headers, out *[]Action) {
	pass := c.cfg.NoGrip || c.cfg.TrustedClient
	hs := make(zhttp.Headers, 0, len(h))
	for _, x := range h {
		n := x.Name
		switch {
		case strings.EqualFold(n, "Content-Type"), strings.EqualFold(n, "Content-Length"),
			strings.EqualFold(n, hdrAccepted),
			strings.EqualFold(n, "Keep-Alive-Interval"), strings.EqualFold(n, "Sec-WebSocket-Extensions"),
			len(n) > 9 && strings.EqualFold(n[:9], "Set-Meta-"), responseHopByHop(n),
			!pass && grip.IsGripHeader(n):
			continue
		}
		hs = append(hs, x)
	}
	ext := grip.ParseWSExtension(h)
	if pass {
		if raw := rawGripExtension(h); raw != "" {
			hs = append(hs, zhttp.Header{Name: "Sec-WebSocket-Extensions", Value: raw})
		}
		*out = append(*out, Accept{Headers: hs})
		return
	}
	c.filter = gripws.New(ext)
	*out = append(*out, Accept{Headers: hs, Grip: c.filter.Enabled, Prefix: c.filter.Prefix})
	for _, p := range grip.ListParams(h, "Grip-Channel", false) {
		ch := p.First()
		if ch == "" {
			continue
		}
		var filters []string
		for _, x := range p[1:] {
			if strings.EqualFold(x.Name, "filter") && x.Value != "" {
				filters = append(filters, x.Value)
			}
		}
		*out = append(*out, Subscribe{Channel: ch, Filters: filters})
	}
}

// rawGripExtension returns the grip item of the Sec-WebSocket-Extensions
// headers as the backend wrote it, for a client that does GRIP itself.
func rawGripExtension(h zhttp.Headers) string {
	for _, v := range h.Values("Sec-WebSocket-Extensions") {
		for _, item := range grip.SplitList(v) {
			if p, ok := grip.ParseParams(item, false); ok && p.First() == "grip" {
				return item
			}
		}
	}
	return ""
}

// responseHopByHop lists response headers that describe the backend's HTTP
// message, not the client's handshake answer.
func responseHopByHop(name string) bool {
	for _, x := range [...]string{"Connection", "Keep-Alive", "Transfer-Encoding", "Content-Encoding", "Upgrade"} {
		if strings.EqualFold(name, x) {
			return true
		}
	}
	return false
}

func rejectHeaders(h zhttp.Headers) zhttp.Headers {
	out := make(zhttp.Headers, 0, len(h))
	for _, x := range h {
		if !responseHopByHop(x.Name) && !strings.EqualFold(x.Name, "Content-Length") {
			out = append(out, x)
		}
	}
	return out
}
