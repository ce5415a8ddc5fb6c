package connmgr

import "time"

// waitHead keeps the deadline while the connection waits for a request
// head (no exchange). With a header timeout, the head's own deadline is
// set once, when the connection is accepted or the next head's first
// bytes are in, and later bytes of the head do not move it: a client
// trickling its head a byte at a time (slowloris) is closed after
// cfg.HeaderTimeout, as web servers do, with no timer of its own (the
// sweep compares the slot's deadline once a second). The inactivity limit
// (cfg.StreamTimeout) still applies if it comes first. A keep-alive
// connection with nothing buffered between requests waits for
// cfg.StreamTimeout, as with condure.
func (c *conn) waitHead() {
	if ht := c.s.cfg.HeaderTimeout; ht > 0 && c.x == nil && c.headBy == 0 {
		c.headBy = time.Now().Add(ht).UnixNano()
	}
	c.touch()
}

// headDeadline sets the slot's deadline while a head is awaited: the
// head's, or the inactivity limit if that comes first.
func (c *conn) headDeadline() {
	d := c.headBy
	if st := c.s.cfg.StreamTimeout; st > 0 {
		d = min(d, time.Now().Add(st).UnixNano())
	}
	c.sl.deadline.Store(d)
}

// headTimedOut ends a connection whose request head did not come in time:
// a 408 if part of one came (as Apache's mod_reqtimeout), else a plain
// close (nothing was asked).
func (c *conn) headTimedOut() {
	c.s.log.Debug().Str("peer", c.peerAddr).Int("buffered", len(c.data)).Msg("request head timed out")
	if len(c.data) == 0 {
		c.close()
		return
	}
	c.data = c.data[:0]
	c.refuse(1, 408, "Request Timeout", "Request Timeout.\n")
}
