package zurl

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// The lean client makes the common outbound request — plain http, the whole
// body at hand, no redirects to follow — on the session's own goroutine:
// write the request (leanreq.go), read the response, hand the connection
// back. net/http's Transport passes every request to a write goroutine and
// the response back from a read goroutine per connection (three hand-offs
// and a dozen allocations per request), which was a third of zurl's CPU for
// small responses. Responses are parsed by readHead (leanresp.go) with
// net/http's rules. Everything else (https, streamed request bodies,
// follow-redirects, Expect) goes through net/http.

const (
	leanIdleTimeout = 90 * time.Second // as the Transport's IdleConnTimeout
	leanMaxIdle     = 256              // per address, as MaxIdleConnsPerHost
	leanBufSize     = 32 << 10         // as the Transport's Read/WriteBufferSize
	max1xx          = 5                // interim responses skipped, as net/http
)

// aLongTimeAgo is a deadline that aborts blocked I/O at once.
var aLongTimeAgo = time.Unix(1, 0)

// errStale is a reused connection that the server had closed.
var errStale = errors.New("zurl: idle connection closed by the server")

type leanConn struct {
	c      net.Conn
	rc     syscall.RawConn // for the liveness peek; nil if c has none
	peekFn func(uintptr) bool
	idle   bool // the last peek's result
	br     *bufio.Reader
	bw     *bufio.Writer
	addr   string
	idleAt time.Time
}

// leanPool keeps idle keep-alive connections per dial address, newest last.
type leanPool struct {
	dial func(ctx context.Context, addr string, checkPolicy bool) (net.Conn, error)
	mu   sync.Mutex
	idle map[string][]*leanConn
}

func newLeanPool(dial func(ctx context.Context, addr string, checkPolicy bool) (net.Conn, error)) *leanPool {
	return &leanPool{dial: dial, idle: map[string][]*leanConn{}}
}

// get returns a live idle connection to addr (reused = true) or dials one.
func (lp *leanPool) get(ctx context.Context, addr string, checkPolicy bool) (*leanConn, bool, error) {
	for {
		lp.mu.Lock()
		list := lp.idle[addr]
		if len(list) == 0 {
			lp.mu.Unlock()
			break
		}
		lc := list[len(list)-1]
		list[len(list)-1] = nil
		lp.idle[addr] = list[:len(list)-1]
		lp.mu.Unlock()
		if time.Since(lc.idleAt) < leanIdleTimeout && lc.alive() {
			return lc, true, nil
		}
		lc.c.Close()
	}
	c, err := lp.dial(ctx, addr, checkPolicy)
	if err != nil {
		return nil, false, err
	}
	lc := &leanConn{c: c, br: bufio.NewReaderSize(c, leanBufSize), bw: bufio.NewWriterSize(c, leanBufSize), addr: addr}
	if sc, ok := c.(syscall.Conn); ok {
		lc.rc, _ = sc.SyscallConn()
	}
	return lc, false, nil
}

// put keeps a connection whose last response was read to its end.
func (lp *leanPool) put(lc *leanConn) {
	lc.idleAt = time.Now()
	lp.mu.Lock()
	if list := lp.idle[lc.addr]; len(list) < leanMaxIdle {
		lp.idle[lc.addr] = append(list, lc)
		lp.mu.Unlock()
		return
	}
	lp.mu.Unlock()
	lc.c.Close()
}

// closeIdle closes connections idle for longer than d (all when d <= 0).
func (lp *leanPool) closeIdle(d time.Duration) {
	var old []*leanConn
	now := time.Now()
	lp.mu.Lock()
	for addr, list := range lp.idle {
		keep := list[:0]
		for _, lc := range list {
			if d > 0 && now.Sub(lc.idleAt) < d {
				keep = append(keep, lc)
			} else {
				old = append(old, lc)
			}
		}
		clear(list[len(keep):])
		if len(keep) == 0 {
			delete(lp.idle, addr)
		} else {
			lp.idle[addr] = keep
		}
	}
	lp.mu.Unlock()
	for _, lc := range old {
		lc.c.Close()
	}
}

// alive reports whether an idle connection can carry a request: nothing
// buffered or readable (a server says nothing unasked), not closed. It is
// one non-blocking peek: net/http learns the same from its read goroutine.
func (lc *leanConn) alive() bool {
	if lc.br.Buffered() > 0 {
		return false
	}
	if lc.rc == nil {
		return true
	}
	if lc.peekFn == nil {
		lc.peekFn = lc.peek // made once per connection, not per reuse
	}
	err := lc.rc.Read(lc.peekFn)
	return err == nil && lc.idle
}

// peek is alive's non-blocking look at the socket: idle when nothing is
// there to read and it is not closed.
func (lc *leanConn) peek(fd uintptr) bool {
	var b [1]byte
	_, _, e := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	lc.idle = e == syscall.EAGAIN
	return true
}

// watcher is the session side of a lean exchange: cancel aborts the I/O of
// the watched connection (session.watch).
type watcher interface {
	watch(c net.Conn) bool
	unwatch() bool
}

// roundTrip makes req on a pooled connection. The body of the returned
// response hands the connection back when read to its end. A cancel reaches
// the connection through w; ctx (the session's, or a child with the
// request's timeout) bounds the dial, and a deadline of its own also
// aborts the exchange.
func (lp *leanPool) roundTrip(ctx context.Context, req *leanReq, w watcher) (*respHead, error) {
	for attempt := 0; ; attempt++ {
		lc, reused, err := lp.get(ctx, req.addr, req.checkPolicy)
		if err != nil {
			return nil, err
		}
		if !w.watch(lc.c) {
			lc.c.Close()
			return nil, context.Canceled
		}
		stop := w.unwatch
		if _, ok := ctx.Deadline(); ok { // timeout: rare, a callback is fine
			stopTimer := context.AfterFunc(ctx, func() { _ = lc.c.SetDeadline(aLongTimeAgo) }) // fails only on a closed conn: nothing to abort
			stop = func() bool {
				stopped := stopTimer()
				return w.unwatch() && stopped
			}
		}
		resp, reuse, wrote, err := lc.exchange(req)
		if err == nil {
			if resp.body == http.NoBody { // HEAD, 204, 304, Content-Length: 0
				if stop() && reuse {
					lp.put(lc)
				} else {
					lc.c.Close()
				}
				return resp, nil
			}
			resp.body = &leanBody{src: resp.body, lc: lc, lp: lp, stop: stop, reuse: reuse}
			return resp, nil
		}
		stop()
		lc.c.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// A reused connection the server closed meanwhile: try a new one
		// when no response byte came and the request can be replayed, as
		// net/http does.
		if reused && attempt == 0 && errors.Is(err, errStale) && (!wrote || replayable(req)) {
			continue
		}
		return nil, err
	}
}

// replayable is net/http's rule for retrying after the request went out.
func replayable(req *leanReq) bool {
	switch req.method {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	return req.headers.Has("Idempotency-Key") || req.headers.Has("X-Idempotency-Key")
}

// exchange writes req and reads the response head (interim 1xx skipped);
// wrote says whether any of the request may have reached the connection.
func (lc *leanConn) exchange(req *leanReq) (resp *respHead, reuse, wrote bool, err error) {
	req.write(lc.bw)
	if err := lc.bw.Flush(); err != nil {
		return nil, false, true, staleOr(err, true)
	}
	for i := 0; ; i++ {
		if _, err := lc.br.Peek(1); err != nil {
			return nil, false, true, staleOr(err, i == 0)
		}
		resp, reuse, err = readHead(lc.br, req.method == http.MethodHead)
		if err != nil {
			return nil, false, true, err
		}
		if resp.code >= 200 || resp.code == http.StatusSwitchingProtocols || i == max1xx {
			return resp, reuse, true, nil
		}
	}
}

// staleOr marks an error that means "the server had closed the connection
// before answering" (nothing of a response read yet).
func staleOr(err error, noResponse bool) error {
	if noResponse && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
		return errors.Join(errStale, err)
	}
	return err
}

// leanBody is a response body that gives its connection back to the pool
// once read to the end, or closes it when abandoned early.
type leanBody struct {
	src   io.ReadCloser
	lc    *leanConn
	lp    *leanPool
	stop  func() bool // false: a cancel or timeout may have set the deadline
	reuse bool
	done  bool
}

func (b *leanBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.src.Read(p)
	if err != nil {
		b.finish(errors.Is(err, io.EOF))
	}
	return n, err
}

func (b *leanBody) Close() error {
	if !b.done {
		b.finish(false)
	}
	return nil
}

func (b *leanBody) finish(eof bool) {
	b.done = true
	if b.stop() && eof && b.reuse {
		b.lp.put(b.lc)
		return
	}
	b.lc.c.Close()
}
