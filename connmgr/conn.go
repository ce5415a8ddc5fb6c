package connmgr

import (
	"errors"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/pushpin-go/pushpin/connmgr/internal/http1"
)

// conn is one client connection. Its goroutine (serve) owns everything in
// it. Between requests it holds no buffer: it waits for readability with
// waitReadable and takes a pooled buffer only when bytes are there.
type conn struct {
	s        *Server
	nc       net.Conn
	rc       syscall.RawConn
	serial   uint64
	peerAddr string
	peerPort int64
	buf      *[]byte // pooled read buffer; nil while nothing is buffered
	data     []byte  // unconsumed input, a window of *buf
}

func (s *Server) newConn(nc net.Conn) (*conn, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil, errors.New("connection has no file descriptor")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	c := &conn{s: s, nc: nc, rc: rc, serial: s.connSeq.Add(1) - 1}
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		c.peerAddr, c.peerPort = a.IP.String(), int64(a.Port)
	}
	return c, nil
}

func (c *conn) release() {
	if c.buf != nil && len(c.data) == 0 {
		c.s.bufs.Put(c.buf)
		c.buf, c.data = nil, nil
	}
}

// fill reads once into the free space of the buffer (moving unconsumed
// bytes to the front first). It returns an error when nothing was read.
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
	n, err := c.nc.Read(b[len(c.data):])
	c.data = b[:len(c.data)+n]
	if n > 0 {
		return nil
	}
	if err == nil {
		err = errors.New("empty read")
	}
	return err
}

func (c *conn) deadline() time.Time {
	if c.s.cfg.StreamTimeout <= 0 {
		return time.Time{}
	}
	return time.Now().Add(c.s.cfg.StreamTimeout)
}

func (c *conn) serve() {
	defer func() {
		c.data = nil
		if c.buf != nil {
			c.s.bufs.Put(c.buf)
			c.buf = nil
		}
		c.nc.Close()
		c.s.forgetConn(c)
	}()
	for {
		_ = c.nc.SetReadDeadline(c.deadline())
		if len(c.data) == 0 {
			c.release()
			if err := waitReadable(c.rc); err != nil {
				return
			}
		}
		req, err := c.readHead()
		if err != nil {
			var he *http1.Error
			if errors.As(err, &he) {
				c.s.log.Debug().Err(err).Str("peer", c.peerAddr).Msg("refusing request")
				c.writeError(1, he.Code, he.Reason, he.Reason+".\n")
			}
			return
		}
		if req.WebSocket {
			// WebSocket sessions (zws) are the next piece of work.
			c.writeError(req.Minor, 501, "Not Implemented", "WebSocket is not supported yet.\n")
			return
		}
		_ = c.nc.SetReadDeadline(time.Time{})
		if !c.exchange(req) {
			return
		}
	}
}

func (c *conn) readHead() (*http1.Request, error) {
	for {
		if len(c.data) > 0 {
			req, n, err := http1.ParseRequest(c.data, c.s.lim)
			if err == nil {
				c.data = c.data[n:]
				return req, nil
			}
			if err != http1.ErrIncomplete {
				return nil, err
			}
		}
		if err := c.fill(); err != nil {
			return nil, err
		}
	}
}

// write sends bufs to the client, bounded by the stream timeout.
func (c *conn) write(bufs ...[]byte) error {
	_ = c.nc.SetWriteDeadline(c.deadline())
	nb := net.Buffers(bufs)
	_, err := nb.WriteTo(c.nc)
	return err
}

func (c *conn) writeError(minor, code int, reason, body string) {
	_ = c.write(http1.AppendError(nil, minor, code, reason, body))
}

// peerPortString is for logs.
func (c *conn) peer() string { return c.peerAddr + ":" + strconv.FormatInt(c.peerPort, 10) }
