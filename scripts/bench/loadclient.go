package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The passthrough load is a closed loop of keep-alive GETs, as wrk makes
// it: raw non-blocking sockets on an epoll loop per core, a request written
// in one syscall and a response read in (usually) one. It used to be
// net/http's client, which cost more CPU per request than our whole proxy
// stack (two goroutines per connection, a channel hand-off per request);
// on a two-core box shared with the target, that CPU was taken from the
// target and squeezed every ratio toward 1.

// getLoad is one closed-loop load: conc connections to addr, split over
// one epoll loop per CPU.
type getLoad struct {
	addr string
	req  []byte
}

// loadGET runs conc keep-alive clients GETting url in a loop for d, after a
// short warm-up on the same connections that is not counted.
func loadGET(ctx context.Context, url string, conc int, d time.Duration) loadResult {
	hostPath, ok := bytes.CutPrefix([]byte(url), []byte("http://"))
	if !ok {
		return loadResult{Errors: 1, FirstErr: fmt.Errorf("load: %q is not an http:// URL", url)}
	}
	addr, path := string(hostPath), "/"
	if i := bytes.IndexByte(hostPath, '/'); i >= 0 {
		addr, path = string(hostPath[:i]), string(hostPath[i:])
	}
	g := &getLoad{addr: addr, req: []byte("GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: pushpin-bench\r\n\r\n")}
	loops := max(1, min(runtime.NumCPU(), conc))
	var (
		mu  sync.Mutex
		res loadResult
		wg  sync.WaitGroup
	)
	for i := 0; i < loops; i++ {
		n := conc / loops
		if i < conc%loops {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := g.runLoop(ctx, n, min(d/5, 500*time.Millisecond), d)
			mu.Lock()
			res.OK += r.OK
			res.Errors += r.Errors
			res.Lat = append(res.Lat, r.Lat...)
			res.Elapsed = max(res.Elapsed, r.Elapsed)
			if res.FirstErr == nil {
				res.FirstErr = r.FirstErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if res.Elapsed <= 0 {
		res.Elapsed = d
	}
	return res
}

// getConn is one keep-alive client connection.
type getConn struct {
	fd   int
	sent time.Time
	buf  []byte // response bytes so far
	done bool   // the phase ended: no further request
}

// runLoop drives n connections on one epoll set, locked to its thread:
// warm-up for w (not counted), then d measured.
func (g *getLoad) runLoop(ctx context.Context, n int, w, d time.Duration) loadResult {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var res loadResult
	fail := func(err error) {
		res.Errors++
		if res.FirstErr == nil {
			res.FirstErr = err
		}
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		fail(fmt.Errorf("load: epoll: %w", err))
		return res
	}
	defer unix.Close(ep)
	conns := map[int32]*getConn{}
	defer func() {
		for _, c := range conns {
			unix.Close(c.fd)
		}
	}()
	open := func() (*getConn, error) {
		fd, err := dialRaw(g.addr)
		if err != nil {
			return nil, err
		}
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("load: epoll add: %w", err)
		}
		c := &getConn{fd: fd, buf: make([]byte, 0, 512)}
		conns[int32(fd)] = c
		return c, nil
	}
	drop := func(c *getConn) {
		delete(conns, int32(c.fd))
		unix.Close(c.fd)
	}
	send := func(c *getConn) bool {
		c.sent = time.Now()
		if _, err := unix.Write(c.fd, g.req); err != nil {
			fail(fmt.Errorf("load: write: %w", err))
			drop(c)
			return false
		}
		return true
	}
	// replace opens a connection in place of a failed one and sends on it;
	// false: there is none.
	replace := func() bool {
		c, err := open()
		if err != nil {
			fail(err)
			time.Sleep(10 * time.Millisecond)
			return false
		}
		return send(c)
	}

	end := time.Now().Add(w)
	record, active := false, 0
	var recStart, last time.Time
	for i := 0; i < n; i++ {
		c, err := open()
		if err != nil {
			fail(err)
			continue
		}
		if send(c) {
			active++
		}
	}
	evs := make([]unix.EpollEvent, 128)
	rbuf := make([]byte, 64<<10)
	lat := make([]time.Duration, 0, 1<<16)
	for active > 0 && ctx.Err() == nil {
		k, err := unix.EpollWait(ep, evs, 100)
		if err != nil && !errors.Is(err, unix.EINTR) {
			fail(fmt.Errorf("load: epoll wait: %w", err))
			break
		}
		for _, ev := range evs[:max(k, 0)] {
			c := conns[ev.Fd]
			if c == nil {
				continue
			}
			m, err := unix.Read(c.fd, rbuf)
			if err == unix.EAGAIN || err == unix.EINTR {
				continue
			}
			if m <= 0 {
				if err == nil {
					err = errors.New("connection closed by the target")
				}
				fail(fmt.Errorf("load: read: %w", err))
				drop(c)
				active--
				if !c.done && time.Now().Before(end) && replace() {
					active++
				}
				continue
			}
			c.buf = append(c.buf, rbuf[:m]...)
			used, code, perr := parseKeepAliveResponse(c.buf)
			switch {
			case perr != nil:
				fail(fmt.Errorf("load: response: %w", perr))
				drop(c)
				active--
				if time.Now().Before(end) && replace() {
					active++
				}
				continue
			case used == 0:
				continue // incomplete
			}
			now := time.Now()
			c.buf = append(c.buf[:0], c.buf[used:]...)
			if code != 200 {
				fail(statusError{code})
			} else if record {
				lat = append(lat, now.Sub(c.sent))
				last = now
			}
			if now.Before(end) {
				if !send(c) {
					active--
				}
				continue
			}
			c.done = true
			active--
		}
		// The warm-up ends when its time is up and every connection has
		// had its last answer; the measured phase starts afresh on them.
		if active == 0 && !record && ctx.Err() == nil {
			recStart = time.Now()
			record, end = true, recStart.Add(d)
			res.Errors, res.FirstErr = 0, nil
			for _, c := range conns {
				c.done = false
				if send(c) {
					active++
				}
			}
		}
	}
	res.OK, res.Lat = len(lat), lat
	if record {
		res.Elapsed = last.Sub(recStart)
	}
	return res
}

// dialRaw opens a blocking-connected, then non-blocking, TCP socket.
func dialRaw(addr string) (int, error) {
	ta, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		return -1, fmt.Errorf("load: address %s: %w", addr, err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("load: socket: %w", err)
	}
	sa := &unix.SockaddrInet4{Port: ta.Port}
	copy(sa.Addr[:], ta.IP.To4())
	if err := unix.Connect(fd, sa); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("load: connect %s: %w", addr, err)
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("load: nonblock: %w", err)
	}
	return fd, nil
}

var (
	errRespHead   = errors.New("malformed response head")
	errRespLength = errors.New("bad Content-Length")
	errRespChunk  = errors.New("malformed chunked body")
	errRespClose  = errors.New("response without a length (read to close): not keep-alive")
)

// parseKeepAliveResponse parses one whole HTTP/1.1 response at the start
// of b: it returns the bytes it used (0: incomplete) and the status code.
// The body is framed by Content-Length or chunked encoding; anything else
// could not be followed by another response on the connection. Responses
// here are a few hundred bytes, so re-parsing from the start when more
// bytes arrive costs less than keeping parser state.
func parseKeepAliveResponse(b []byte) (used, code int, err error) {
	he := bytes.Index(b, []byte("\r\n\r\n"))
	if he < 0 {
		if len(b) > headMax {
			return 0, 0, errRespHead
		}
		return 0, 0, nil
	}
	head := b[:he]
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, 0, errRespHead
	}
	code, err = strconv.Atoi(string(line[9:12]))
	if err != nil || code < 100 || (len(line) > 12 && line[12] != ' ') {
		return 0, 0, errRespHead
	}
	clen, chunked := int64(-1), false
	for len(rest) > 0 {
		var h []byte
		h, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, val, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return 0, 0, errRespHead
		}
		val = bytes.TrimSpace(val)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, err := strconv.ParseInt(string(val), 10, 64)
			if err != nil || n < 0 || (clen >= 0 && n != clen) {
				return 0, 0, errRespLength
			}
			clen = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			if !bytes.EqualFold(val, []byte("chunked")) {
				return 0, 0, errRespHead
			}
			chunked = true
		}
	}
	body := he + 4
	switch {
	case code == 204 || code == 304 || code < 200:
		return body, code, nil
	case chunked:
		n, err := chunkedLen(b[body:])
		if n == 0 || err != nil {
			return 0, 0, err
		}
		return body + n, code, nil
	case clen >= 0:
		if int64(len(b)-body) < clen {
			return 0, 0, nil
		}
		return body + int(clen), code, nil
	}
	return 0, 0, errRespClose
}

// chunkedLen returns the length of a complete chunked body at the start of
// b, trailers included (0: incomplete).
func chunkedLen(b []byte) (int, error) {
	off := 0
	for {
		le := bytes.Index(b[off:], []byte("\r\n"))
		if le < 0 {
			if len(b)-off > 1024 {
				return 0, errRespChunk
			}
			return 0, nil
		}
		sizeText, _, _ := bytes.Cut(b[off:off+le], []byte(";"))
		size, err := strconv.ParseUint(string(bytes.TrimSpace(sizeText)), 16, 32)
		if err != nil {
			return 0, errRespChunk
		}
		off += le + 2
		if size == 0 {
			// Trailer lines, then the empty line.
			for {
				te := bytes.Index(b[off:], []byte("\r\n"))
				if te < 0 {
					return 0, nil
				}
				off += te + 2
				if te == 0 {
					return off, nil
				}
			}
		}
		if len(b)-off < int(size)+2 {
			return 0, nil
		}
		if b[off+int(size)] != '\r' || b[off+int(size)+1] != '\n' {
			return 0, errRespChunk
		}
		off += int(size) + 2
	}
}
