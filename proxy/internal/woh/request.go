package woh

import (
	"strconv"
	"strings"
	"time"

	"github.com/pushpin-go/pushpin/internal/uuid"
	"github.com/pushpin-go/pushpin/proto/wsevents"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// dropRequestHeader lists the client handshake headers never forwarded:
// Pushpin's own list (Upgrade, Accept, Connection-Id, Content-Length, and
// Meta-* so a client cannot forge connection meta), Content-Type and
// Sec-WebSocket-Extensions which the Conn sets itself, and the hop-by-hop
// headers in case the caller passes raw client headers.
func dropRequestHeader(name string) bool {
	if len(name) >= 5 && strings.EqualFold(name[:5], "Meta-") {
		return true
	}
	for _, x := range [...]string{"Upgrade", "Accept", "Connection-Id", "Content-Length",
		"Content-Type", "Sec-WebSocket-Extensions", "Connection", "Keep-Alive", "TE",
		"Trailer", "Transfer-Encoding", "Expect", "Accept-Encoding", "Content-Encoding"} {
		if strings.EqualFold(name, x) {
			return true
		}
	}
	return false
}

// The names and values are copied into one buffer of their own: the
// caller's strings usually share an arena with the whole handshake packet,
// which a connection open for hours must not keep alive.
func sanitize(in zhttp.Headers, offerGrip bool) zhttp.Headers {
	size := 0
	for _, h := range in {
		if !dropRequestHeader(h.Name) {
			size += len(h.Name) + len(h.Value)
		}
	}
	var b strings.Builder
	b.Grow(size)
	for _, h := range in {
		if !dropRequestHeader(h.Name) {
			b.WriteString(h.Name)
			b.WriteString(h.Value)
		}
	}
	all, off := b.String(), 0
	str := func(n int) string {
		off += n
		return all[off-n : off]
	}
	out := make(zhttp.Headers, 0, len(in)+1)
	for _, h := range in {
		if !dropRequestHeader(h.Name) {
			out = append(out, zhttp.Header{Name: str(len(h.Name)), Value: str(len(h.Value))})
		}
	}
	if offerGrip {
		out = append(out, zhttp.Header{Name: "Sec-WebSocket-Extensions", Value: "grip"})
	}
	return out
}

// requestHeaders builds a request's headers afresh (new Grip-Sig, current
// meta, the body's length).
func (c *Conn) requestHeaders() zhttp.Headers {
	h := make(zhttp.Headers, 0, len(c.base)+6+len(c.meta))
	h = append(h, c.base...)
	if c.cfg.Sign != nil {
		h = c.cfg.Sign(h)
	}
	h = append(h,
		zhttp.Header{Name: "Accept", Value: wsevents.ContentType},
		zhttp.Header{Name: "Connection-Id", Value: c.cid},
		zhttp.Header{Name: "Content-Type", Value: wsevents.ContentType},
		zhttp.Header{Name: "Content-Length", Value: strconv.Itoa(len(c.reqBody))})
	if c.reqReplay > 0 {
		// Pushpin 1.41: the request starts with content the backend did
		// not accept last time (Content-Bytes-Accepted).
		h = append(h, zhttp.Header{Name: hdrReplayed, Value: strconv.Itoa(c.reqReplay)})
	}
	for _, m := range c.meta {
		h = append(h, zhttp.Header{Name: "Meta-" + m.name, Value: m.value})
	}
	return h
}

// needSend reports whether a request is due now (timers aside).
func (c *Conn) needSend() bool {
	switch {
	case c.phase == finished, c.inflight:
		return false
	case c.gone:
		return !c.discSent
	case c.phase == opening:
		return false // OPEN is re-sent only by the keep-alive timer
	case c.refresh, c.closing && !c.closeSent:
		// A close goes even to a slow client's backend (Pushpin held it
		// back too): a closing client reads nothing more anyway.
		return true
	case c.pending >= c.cfg.Window:
		// The client is slow: do not fetch more for it yet.
		return false
	}
	// Replayed content alone does not make a request: the backend that
	// left it unaccepted waits for more (a keep-alive or refresh still
	// carries it).
	return len(c.queue) > c.replayMsgs
}

func (c *Conn) maybeSend(out *[]Action) {
	if c.needSend() {
		c.send(out)
	}
}

// send builds and returns the next request: OPEN, DISCONNECT alone, or the
// queued messages (up to Window bytes, the last may overshoot; one with
// OneEvent) followed by a due CLOSE once every queued message is in.
func (c *Conn) send(out *[]Action) {
	c.kaAt = time.Time{} // any request stops the keep-alive timer
	c.refresh = false
	c.reqContent, c.reqClose, c.reqOpen = 0, false, false
	c.reqMaxed, c.reqReplay, c.reqCloseSize = false, 0, 0
	clear(c.reqMsgs)
	c.reqMsgs = c.reqMsgs[:0]
	var body []byte
	switch {
	case c.gone:
		body = wsevents.Append(nil, wsevents.Disconnect, nil)
		c.discSent = true
	case c.phase == opening:
		body = wsevents.Append(nil, wsevents.Open, nil)
		c.reqOpen = true
	default:
		size := 0
		for _, m := range c.queue {
			size += len(m.data) + 20
		}
		body = make([]byte, 0, size+len(c.closeText)+16)
		events, take := 0, 0
		for take < len(c.queue) && c.reqContent < c.cfg.Window && !(c.cfg.OneEvent && events >= 1) {
			m := c.queue[take]
			body = wsevents.Append(body, m.typ, m.data)
			c.reqContent += len(m.data)
			events++
			take++
		}
		// The messages stay until the response says how much of them
		// the backend accepted; the rest is replayed.
		c.reqMsgs = append(c.reqMsgs, c.queue[:take]...)
		c.reqMaxed = take < len(c.queue) || c.partialOn
		c.reqReplay = min(c.replayBytes, c.reqContent) // replayed ones lead the queue
		c.replayMsgs, c.replayBytes = 0, 0
		c.queueBytes -= c.reqContent
		n := copy(c.queue, c.queue[take:])
		clear(c.queue[n:])
		c.queue = c.queue[:n]
		// A CLOSE goes only after every queued message: nothing may
		// follow it (Pushpin 1.36 sent it after a window-limited batch).
		if c.closing && !c.closeSent && len(c.queue) == 0 && !(c.cfg.OneEvent && events >= 1) {
			body = wsevents.AppendClose(body, c.closeCode, c.closeText)
			c.reqClose = true
			if c.closeCode >= 0 {
				c.reqCloseSize = 2 + len(c.closeText)
			}
		}
	}
	c.reqBody = body
	c.inflight = true
	c.respCode, c.respBody, c.respHeaders = 0, nil, nil
	*out = append(*out, SendRequest{Headers: c.requestHeaders(), Body: body})
}

// NewConnectionID returns a random RFC 4122 version 4 UUID, the form of
// Pushpin's Connection-Id.
func NewConnectionID() string { return uuid.V4() }

// HTTPScheme maps the client's URI scheme to the request's: wss → https,
// anything else (ws) → http.
func HTTPScheme(wsScheme string) string {
	if strings.EqualFold(wsScheme, "wss") || strings.EqualFold(wsScheme, "https") {
		return "https"
	}
	return "http"
}
