package connmgr

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// maxIov bounds the pieces of one write (head, chunk line, body, CRLF,
// last chunk).
const maxIov = 8

// send writes bufs to the client without blocking. What the socket does
// not take now is kept in c.out (after anything already kept) and written
// when the socket is writable; nothing overtakes it. It reports whether
// everything was handed to the socket now.
func (c *conn) send(bufs [][]byte) (bool, error) {
	if len(c.out) == 0 {
		n, err := writev(c.fd, bufs)
		if err != nil && err != unix.EAGAIN {
			return false, err
		}
		for len(bufs) > 0 && n >= len(bufs[0]) {
			n -= len(bufs[0])
			bufs = bufs[1:]
		}
		if len(bufs) == 0 {
			return true, nil
		}
		bufs[0] = bufs[0][n:]
	}
	for _, b := range bufs {
		c.keep(b)
	}
	c.touch()
	return false, nil
}

// smallOut is the pooled size for a small kept remainder (the usual case:
// part of one message), so that a stalled client does not pin a full
// --buffer-size buffer for a few hundred bytes.
const smallOut = 1024

// keep appends b to the unwritten output. Kept output lives in a pooled
// buffer that fits it (smallOut, else --buffer-size) or, past that, in an
// allocation of its own.
func (c *conn) keep(b []byte) {
	if len(b) == 0 {
		return
	}
	need := len(c.out) + len(b)
	if need > cap(c.out) {
		if c.outBuf != nil && need <= len(*c.outBuf) {
			// Compact to the front of the pooled buffer.
			c.out = (*c.outBuf)[:copy(*c.outBuf, c.out)]
		} else {
			var nbp *[]byte
			var nb []byte
			switch {
			case need <= smallOut:
				nbp = c.s.small.Get().(*[]byte)
			case need <= c.s.cfg.BufferSize:
				nbp = c.s.bufs.Get().(*[]byte)
			default:
				nb = make([]byte, 0, need+need/4)
			}
			if nbp != nil {
				nb = (*nbp)[:0]
			}
			nb = append(nb, c.out...)
			c.putOut()
			c.out, c.outBuf = nb, nbp
		}
	}
	c.out = append(c.out, b...)
}

func (c *conn) putOut() {
	if c.outBuf == nil {
		return
	}
	if len(*c.outBuf) == smallOut {
		c.s.small.Put(c.outBuf)
	} else {
		c.s.bufs.Put(c.outBuf)
	}
	c.outBuf = nil
}

// flush writes kept output while the socket takes it. Once all of it is
// out, credits held back for it are returned and a lingering connection
// closes.
func (c *conn) flush() error {
	for len(c.out) > 0 {
		n, err := send(c.fd, c.out)
		if err == unix.EAGAIN {
			c.touch()
			return nil
		}
		if err != nil {
			return err
		}
		c.out = c.out[n:]
	}
	c.dropOut()
	c.touch()
	if c.lingering {
		c.close()
		return nil
	}
	if x := c.x; x != nil && x.ws != nil {
		x.ws.kept = 0
	}
	if x := c.x; x != nil && x.unflushed > 0 {
		x.owed += x.unflushed
		x.unflushed = 0
		x.returnCredits()
	}
	return nil
}

func (c *conn) dropOut() {
	c.putOut()
	c.out = nil
}

// writev is one non-blocking writev(2) of the non-empty pieces of bufs.
// The descriptor is non-blocking, so the call returns at once: it is made
// raw, without the runtime's syscall bookkeeping (a fan-out makes tens of
// thousands of them in a row).
func writev(fd int, bufs [][]byte) (int, error) {
	var iov [maxIov]unix.Iovec
	var one []byte // the only non-empty piece, while there is one
	k := 0
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		if k == maxIov {
			break // the rest is kept and written later
		}
		iov[k].Base = &b[0]
		iov[k].SetLen(len(b))
		one = b
		k++
	}
	switch k {
	case 0:
		return 0, nil
	case 1:
		// The usual case (a fan-out's shared chunk): send(2) goes straight
		// to the socket, without write(2)'s file layer (position lock,
		// iov_iter set-up): at most a few percent less kernel CPU here.
		return send(fd, one)
	}
	for {
		n, _, e := unix.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(k))
		switch e {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		}
		return 0, e
	}
}

// send and read are non-blocking send(2) and read(2), raw as writev. A
// peer gone is EPIPE for send, with no SIGPIPE.
func send(fd int, b []byte) (int, error) {
	return rw(unix.SYS_SENDTO, fd, b, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
}

func read(fd int, b []byte) (int, error) {
	return rw(unix.SYS_READ, fd, b, 0)
}

func rw(trap uintptr, fd int, b []byte, flags uintptr) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for {
		n, _, e := unix.RawSyscall6(trap, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), flags, 0, 0)
		switch e {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		}
		return 0, e
	}
}
