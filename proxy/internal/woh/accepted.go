package woh

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// Content-Bytes-Accepted, a Pushpin 1.41 extension of WebSocket-over-HTTP
// (not in the 1.36 spec): the backend may accept only the first N content
// bytes of a request's client messages; the proxy keeps the rest and
// replays it at the start of a later request, announced by
// Content-Bytes-Replayed. Absent, the whole request is accepted, as in 1.36.
const (
	hdrAccepted = "Content-Bytes-Accepted"
	hdrReplayed = "Content-Bytes-Replayed"
)

// acceptContent applies the response's Content-Bytes-Accepted to the
// request's messages: accepted bytes leave the window (so withheld credits
// flow again), the rest returns to the head of the queue. It decides
// whether the request's CLOSE counts as sent (c.reqClose stays true) and
// returns an error that ends the connection.
func (c *Conn) acceptContent(h zhttp.Headers) error {
	content := c.reqContent
	defer func() {
		clear(c.reqMsgs)
		c.reqMsgs = c.reqMsgs[:0]
		c.reqContent = 0
	}()
	if c.gone {
		// The client vanished: its messages are discarded anyway, and
		// nothing must stand in the way of the DISCONNECT.
		return nil
	}
	withClose := content
	if c.reqClose {
		withClose += c.reqCloseSize
	}
	n := withClose
	if h.Has(hdrAccepted) {
		// Invalid or negative: everything (Pushpin's rule).
		if x, err := strconv.Atoi(strings.TrimSpace(h.Get(hdrAccepted))); err == nil && x >= 0 {
			n = x
		}
		if n > withClose {
			return fmt.Errorf("%w: %d of %d bytes", ErrBadAccepted, n, withClose)
		}
	}
	nonClose := min(n, content)

	// Whole messages first; an empty message at the cut counts as
	// accepted (as in Pushpin), a message cut in its middle keeps its
	// type and is replayed from the first unaccepted byte.
	msgs := c.reqMsgs
	left, i := nonClose, 0
	for i < len(msgs) && len(msgs[i].data) <= left {
		left -= len(msgs[i].data)
		i++
	}
	if left > 0 {
		msgs[i].data = msgs[i].data[left:]
	}
	progress := nonClose > 0 || i > 0

	if c.reqClose {
		switch {
		case nonClose < content && !progress:
			// No more client data will come: waiting for it is futile.
			return fmt.Errorf("%w: none of the content before CLOSE", ErrNoProgress)
		case nonClose < content:
			c.reqClose = false // not sent yet: it follows the replay
		case n < withClose:
			// All the data was taken, so nothing is left to wait for:
			// the CLOSE must be accepted with it.
			return fmt.Errorf("%w: content accepted but not the CLOSE", ErrBadAccepted)
		}
	}
	if c.reqMaxed && !progress {
		// Data was left out of the request: accepting nothing would make
		// the same request forever.
		return fmt.Errorf("%w: none of a full request", ErrNoProgress)
	}

	if rest := msgs[i:]; len(rest) > 0 {
		q := make([]message, 0, len(rest)+len(c.queue))
		q = append(q, rest...)
		c.queue = append(q, c.queue...)
		c.replayMsgs, c.replayBytes = len(rest), content-nonClose
		c.queueBytes += c.replayBytes
	}
	if c.reqClose {
		// After the CLOSE nothing more goes to the backend.
		c.queue, c.queueBytes, c.replayMsgs, c.replayBytes = nil, 0, 0, 0
	}
	return nil
}
