package connmgr

import (
	"errors"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pushpin-go/pushpin/connmgr/internal/http1"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// conn is one client connection. No goroutine belongs to it: it is a
// serial executor of events (client readiness from the epoll set, server
// packets from a worker, expiry, timeouts, shutdown), run by whichever
// goroutine posts an event while the connection is not already running
// (see post). Every handler is non-blocking, so that goroutine can be a
// shared one (a worker delivering a published message to thousands of
// connections, or an epoll loop). Between requests, and while a stream
// is held with nothing buffered, it holds no buffer either.
type conn struct {
	s        *Server
	loop     *ioLoop
	fd       int // the accepted non-blocking descriptor, closed only by the runner (close)
	serial   uint64
	peerAddr string
	peerPort int64
	// sl is the connection's slot (index slotIdx): its deadline (when
	// client inactivity ends the connection) is set by the runner and
	// compared by the sweeper.
	sl      *slot
	slotIdx uint32

	mu      sync.Mutex
	running bool    // guarded by mu: a goroutine is executing this connection's events
	queue   []event // guarded by mu: events posted while running

	// Owned by the runner.
	rt         *runCtx // the running goroutine's context
	x          *exchange
	buf        *[]byte // pooled read buffer; nil while nothing is buffered
	data       []byte  // unconsumed input, a window of *buf
	out        []byte  // output the socket did not take yet
	outBuf     *[]byte // pooled storage of out, if out is in one
	armed      uint32  // epoll interest registered (edge-triggered)
	registered bool    // fd is in loop's epoll set
	// rdPending: the client may have sent input that no read has taken yet
	// (an edge came while input was not wanted, or the last read filled
	// the buffer); edge-triggered epoll will not tell again.
	rdPending bool
	lingering bool // closing once out is written
	closed    bool
	// headBy (unix ns, 0: none) is when the request head awaited must be
	// in (cfg.HeaderTimeout), set when the connection was accepted or the
	// next head began; more bytes of the head do not move it.
	headBy int64
}

type evKind uint8

const (
	evIO       evKind = iota + 1 // epoll readiness (mask)
	evPacket                     // a server packet for session ss
	evExpire                     // the server of ss has been silent too long
	evTimeout                    // client inactivity (deadline) passed
	evPeerGone                   // a packet of ss to server d.p.From was dropped: unreachable
	evShutdown                   // Run is stopping
)

type event struct {
	kind evKind
	mask uint32
	ss   *session
	d    delivery
}

// delivery is one server packet for one session. p is shared, read-only,
// by every session of a list-form id; seq is this session's.
type delivery struct {
	p      *zhttp.Packet
	seq    int64
	hasSeq bool
	chunk  []byte  // p as one framed chunk (chunkWire), computed once per list-form packet; else nil
	ws     *wsWire // p as one WebSocket frame, built once per list-form packet when a session needs it
}

// runCtx is what a running goroutine lends the connections it runs.
type runCtx struct {
	// batch collects credits to return in list form after a worker job
	// (nil outside workers: credits go out one packet per session).
	batch *creditBatch
}

var errWouldBlock = errors.New("would block")

func (s *Server) newConn(fd int, peer unix.Sockaddr) *conn {
	c := &conn{s: s, fd: fd, serial: s.connSeq.Add(1)}
	c.loop = s.loops[c.serial%uint64(len(s.loops))]
	c.peerAddr, c.peerPort = peerOf(peer)
	return c
}

// post runs ev on this goroutine if the connection is not running, else
// queues it for the goroutine that is. Events run one at a time, in the
// order they were posted.
func (c *conn) post(ev event, rt *runCtx) {
	c.mu.Lock()
	if c.running {
		c.queue = append(c.queue, ev)
		c.mu.Unlock()
		return
	}
	c.running = true
	c.mu.Unlock()
	c.rt = rt
	for {
		c.handle(&ev)
		for c.rdPending && !c.closed && c.wantRead() {
			c.onReadable()
		}
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.mu.Unlock()
			c.rearm()
			c.mu.Lock()
			if len(c.queue) == 0 {
				c.queue, c.rt, c.running = nil, nil, false
				c.mu.Unlock()
				return
			}
		}
		ev = c.queue[0]
		c.queue[0] = event{}
		c.queue = c.queue[1:]
		c.mu.Unlock()
	}
}

func (c *conn) handle(ev *event) {
	if c.closed {
		return
	}
	switch ev.kind {
	case evIO:
		if ev.mask&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 && len(c.out) > 0 {
			if err := c.flush(); err != nil {
				c.failed(err)
				return
			}
		}
		if !c.closed && ev.mask&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			if c.wantRead() {
				c.onReadable()
			} else {
				c.rdPending = true // read once input is wanted again
			}
		}
	case evPacket:
		if c.x != nil && c.x.ss == ev.ss {
			c.outcome(c.x.onPacket(&ev.d))
		}
	case evExpire:
		if c.x != nil && c.x.ss == ev.ss {
			c.s.log.Debug().Str("id", ev.ss.id).Msg("session timed out")
			c.close()
		}
	case evPeerGone:
		if c.x != nil && c.x.ss == ev.ss {
			c.outcome(c.x.peerGone(ev.d.p.From))
		}
	case evTimeout:
		if d := c.sl.deadline.Load(); d != 0 && d <= time.Now().UnixNano() {
			if c.x == nil && c.headBy != 0 && c.headBy <= time.Now().UnixNano() && !c.lingering {
				c.headTimedOut()
				return
			}
			if c.x != nil {
				c.s.log.Debug().Str("id", c.x.ss.id).Msg("client timed out")
				c.x.cancel()
			}
			c.close()
		}
	case evShutdown:
		c.close()
	}
}

// failed ends the connection after a socket error.
func (c *conn) failed(err error) {
	if c.x != nil {
		c.s.log.Debug().Str("id", c.x.ss.id).Err(err).Msg("client connection failed")
		c.x.cancel()
	}
	c.close()
}

// outcome applies what an exchange step decided.
func (c *conn) outcome(res outcome) {
	switch res {
	case abort:
		c.close()
	case linger:
		c.lingerClose()
	case finished:
		persist := c.x.plan.KeepAlive && c.x.dec.Done()
		c.endExchange()
		if !persist {
			c.lingerClose()
			return
		}
		c.touch()
		c.advance() // a pipelined request may be buffered
	}
}

// wantRead says whether client input is wanted now: a request head, more
// request body, or (body complete, nothing buffered) to notice a
// disconnect or the next request.
func (c *conn) wantRead() bool {
	if c.lingering {
		return false
	}
	x := c.x
	if x == nil {
		return true
	}
	if x.ws != nil {
		return x.wsWantRead()
	}
	switch {
	case len(x.pending) > 0:
		return false // body waits for the server's credits
	case x.dec.Done() && len(c.data) > 0:
		return false // a pipelined request is buffered: leave it for later
	case !x.dec.Done() && c.buf != nil && len(c.data) == len(*c.buf):
		return false
	}
	return true
}

// rearm keeps the epoll registration in line with the connection's
// state. It is edge-triggered and stays registered for input (plus
// output while some is kept), so a keep-alive request, or a held stream
// noticing its client leave, costs no epoll_ctl: only kept output adds
// and then drops EPOLLOUT (left on, every ACK would wake us). Input that
// comes while it is not wanted is remembered (rdPending) and read once it
// is.
func (c *conn) rearm() {
	if c.closed {
		return
	}
	want := uint32(unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET)
	if len(c.out) > 0 {
		want |= unix.EPOLLOUT
	}
	if want == c.armed {
		return
	}
	op := unix.EPOLL_CTL_MOD
	if !c.registered {
		op = unix.EPOLL_CTL_ADD
	}
	key := c.epollKey()
	ev := unix.EpollEvent{Events: want, Fd: int32(uint32(key)), Pad: int32(uint32(key >> 32))}
	if err := unix.EpollCtl(c.loop.epfd, op, c.fd, &ev); err != nil {
		c.s.log.Warn().Err(err).Msg("epoll registration")
		c.failed(err)
		return
	}
	c.registered, c.armed = true, want
}

// touch keeps the inactivity deadline: it runs while the connection
// waits for a request or for the client to take output.
func (c *conn) touch() {
	if c.headBy != 0 && c.x == nil && !c.lingering {
		c.headDeadline()
		return
	}
	if c.s.cfg.StreamTimeout <= 0 || c.x != nil && len(c.out) == 0 {
		c.sl.deadline.Store(0)
		return
	}
	c.sl.deadline.Store(time.Now().Add(c.s.cfg.StreamTimeout).UnixNano())
}

// onReadable reads what the client sent: a request head, request body,
// the start of a pipelined request, or EOF (disconnect).
func (c *conn) onReadable() {
	err := c.fill()
	if err == errWouldBlock {
		c.release()
		return
	}
	if err != nil {
		if c.x != nil {
			c.s.log.Debug().Str("id", c.x.ss.id).Err(err).Msg("client disconnected")
			if c.x.ws == nil || !c.x.ws.gotClose {
				// (A WebSocket client that closed its side cleanly first
				// may hang up before our close: the server has its close.)
				c.x.cancel()
			}
		}
		c.close()
		return
	}
	if c.x == nil {
		c.waitHead()
	}
	c.advance()
}

// advance works through buffered input: request body for the current
// exchange, or the next request head.
func (c *conn) advance() {
	for !c.closed && !c.lingering {
		if c.x != nil {
			c.outcome(c.x.pump())
			return
		}
		if len(c.data) == 0 {
			c.release()
			return
		}
		req, n, err := http1.ParseRequest(c.data, c.s.lim)
		if err == http1.ErrIncomplete {
			if len(c.data) < len(*c.buf) {
				c.waitHead() // a pipelined head may have come in part
				return
			}
			err = http1.ErrHeadTooLarge
		}
		if err != nil {
			var he *http1.Error
			if errors.As(err, &he) {
				c.s.log.Debug().Err(err).Str("peer", c.peerAddr).Msg("refusing request")
				c.refuse(1, he.Code, he.Reason, he.Reason+".\n")
			} else {
				c.close()
			}
			return
		}
		c.data = c.data[n:]
		if req.WebSocket {
			c.startWebSocket(req)
			continue
		}
		c.startExchange(req, nil)
	}
}

// release returns the read buffer to the pool when nothing is buffered.
func (c *conn) release() {
	if c.buf != nil && len(c.data) == 0 {
		c.s.bufs.Put(c.buf)
		c.buf, c.data = nil, nil
	}
}

// fill reads once, without blocking, into the free space of the buffer
// (moving unconsumed bytes to the front first).
func (c *conn) fill() error {
	if c.buf == nil {
		c.buf = c.s.bufs.Get().(*[]byte)
		c.data = (*c.buf)[:0]
	}
	b := *c.buf
	if len(c.data) > 0 && &c.data[0] != &b[0] {
		c.data = b[:copy(b, c.data)]
	} else if len(c.data) == 0 {
		c.data = b[:0]
	}
	if len(c.data) == len(b) {
		return http1.ErrHeadTooLarge
	}
	free := len(b) - len(c.data)
	n, err := read(c.fd, b[len(c.data):])
	switch {
	case n > 0:
		// A short read took all there was: the next input is a new edge.
		c.rdPending = n == free
		c.data = b[:len(c.data)+n]
		return nil
	case err == unix.EAGAIN:
		c.rdPending = false
		return errWouldBlock
	case err == nil:
		return errEOF
	}
	return err
}

var errEOF = errors.New("EOF")

// refuse answers a request with a short error response and closes once
// it is written.
func (c *conn) refuse(minor, code int, reason, body string) {
	b := http1.AppendError(nil, minor, code, reason, body)
	if _, err := c.send([][]byte{b}); err != nil {
		c.close()
		return
	}
	c.lingerClose()
}

// lingerClose ends the exchange and closes the connection once its
// output is written.
func (c *conn) lingerClose() {
	if c.x != nil {
		c.endExchange()
	}
	c.lingering = true
	if len(c.out) == 0 {
		c.close()
		return
	}
	c.touch()
}

// close ends the connection now. Only the runner closes the descriptor,
// which is what makes the raw syscalls on c.fd safe.
func (c *conn) close() {
	if c.closed {
		return
	}
	c.closed = true
	if c.x != nil {
		c.endExchange()
	}
	// Closing the only descriptor of the socket takes it out of the epoll
	// set too.
	_ = unix.Close(c.fd)
	c.fd = -1
	c.data = nil
	if c.buf != nil {
		c.s.bufs.Put(c.buf)
		c.buf = nil
	}
	c.dropOut()
	c.s.forgetConn(c)
}
