//go:build !purego

package zmq

/*
#cgo pkg-config: libzmq
#include <zmq.h>
#include <errno.h>
#include <stdlib.h>

// Every helper returns errno itself: zmq_errno() read in a later cgo call
// could come from another OS thread. Socket and message handles pass as
// uintptr_t: they are C memory, and an unsafe.Pointer argument costs a
// cgo pointer check on every call.
#include <stdint.h>
#define S(s) ((void *)(s))
#define M(m) ((zmq_msg_t *)(m))

static int zsetint(void *s, int opt, int v) {
	return zmq_setsockopt(s, opt, &v, sizeof v) == 0 ? 0 : zmq_errno();
}

static int zsetbytes(void *s, int opt, const void *v, size_t n) {
	return zmq_setsockopt(s, opt, v, n) == 0 ? 0 : zmq_errno();
}

static int zbind(void *s, const char *ep) { return zmq_bind(s, ep) == 0 ? 0 : zmq_errno(); }
static int zconnect(void *s, const char *ep) { return zmq_connect(s, ep) == 0 ? 0 : zmq_errno(); }

static int zfd(void *s, int *fd) {
	size_t n = sizeof *fd;
	return zmq_getsockopt(s, ZMQ_FD, fd, &n) == 0 ? 0 : zmq_errno();
}

// data is Go memory the caller keeps alive (runtime.KeepAlive); libzmq
// copies it before returning.
static int zsend(uintptr_t s, uintptr_t data, size_t n, int flags) {
	return zmq_send(S(s), (void *)data, n, flags) >= 0 ? 0 : zmq_errno();
}

typedef struct { void *data; int size; int more; int err; } zframe_r;

// zrecv receives one frame into m (zmq_msg_recv releases what m held
// before); the data stays valid until the next zrecv on m.
static zframe_r zrecv(uintptr_t s, uintptr_t m, int flags) {
	zframe_r r = {0, 0, 0, 0};
	int n = zmq_msg_recv(M(m), S(s), flags);
	if (n < 0) {
		r.err = zmq_errno();
		return r;
	}
	r.data = zmq_msg_data(M(m));
	r.size = n;
	r.more = zmq_msg_more(M(m));
	return r;
}

static uintptr_t znewmsg(void) {
	zmq_msg_t *m = malloc(sizeof(zmq_msg_t));
	if (m) zmq_msg_init(m);
	return (uintptr_t)m;
}

static void zfreemsg(uintptr_t m) {
	zmq_msg_close(M(m));
	free(M(m));
}
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// Transport names the compiled-in implementation.
const Transport = "libzmq"

var zmqTypes = map[Type]C.int{
	Pair: C.ZMQ_PAIR, Pub: C.ZMQ_PUB, Sub: C.ZMQ_SUB, Req: C.ZMQ_REQ, Rep: C.ZMQ_REP,
	Dealer: C.ZMQ_DEALER, Router: C.ZMQ_ROUTER, Pull: C.ZMQ_PULL, Push: C.ZMQ_PUSH,
	XPub: C.ZMQ_XPUB, XSub: C.ZMQ_XSUB,
}

// Socket is a ZeroMQ socket; see the package comment for the ownership rule.
//
// No call blocks inside libzmq on the fast path: Recv and Send try with
// ZMQ_DONTWAIT, and a Recv with nothing queued parks its goroutine in Go's
// network poller on a duplicate of the socket's ZMQ_FD. A goroutine blocked
// in a cgo call would pin an OS thread and make the runtime hand its P to
// another thread each time (sysmon retakes, futex wake-ups): that cost was
// a fifth of the proxy's CPU. Only a Send refused by a full high-water mark
// blocks in libzmq (ZMQ_SNDTIMEO), which is rare and keeps the old semantics.
type Socket struct {
	t   Type
	h   unsafe.Pointer // the libzmq socket; nil once closed
	hp  C.uintptr_t    // h, for the hot-path helpers
	msg C.uintptr_t    // receive buffer (frames are copied out)
	f   *os.File       // dup of ZMQ_FD, registered with the poller
	rc  syscall.RawConn
	rto time.Duration // < 0: Recv blocks forever
	dl  time.Time     // the read deadline set on f

	tryRecv    func(uintptr) bool // s.tryRecvNow, made once
	rdst, rmsg [][]byte
	rerr       error
	opts       Options
}

var (
	ctxOnce sync.Once
	ctx     unsafe.Pointer
)

func zctx() unsafe.Pointer {
	ctxOnce.Do(func() { ctx = C.zmq_ctx_new() })
	return ctx
}

type errno C.int

func (e errno) Error() string {
	return C.GoString(C.zmq_strerror(C.int(e))) + fmt.Sprintf(" (errno %d)", int(e))
}

// New creates a socket with its options applied.
func New(t Type, o Options) (*Socket, error) {
	zt, ok := zmqTypes[t]
	if !ok {
		return nil, fmt.Errorf("zmq: unsupported socket type %v", t)
	}
	c := zctx()
	if c == nil {
		return nil, fmt.Errorf("zmq: cannot create a context")
	}
	h := C.zmq_socket(c, zt)
	if h == nil {
		return nil, fmt.Errorf("zmq: cannot create %v socket: %w", t, errno(C.zmq_errno()))
	}
	s := &Socket{t: t, h: h, hp: C.uintptr_t(uintptr(h)), opts: o}
	if err := s.setOptions(o); err != nil {
		C.zmq_close(h)
		return nil, fmt.Errorf("zmq: %v socket options: %w", t, err)
	}
	var fd C.int
	if e := C.zfd(h, &fd); e != 0 {
		C.zmq_close(h)
		return nil, fmt.Errorf("zmq: %v socket fd: %w", t, errno(e))
	}
	// A duplicate, so closing the os.File (which deregisters it from the
	// poller) leaves libzmq's own descriptor alone.
	dup, _, en := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
	if en != 0 {
		C.zmq_close(h)
		return nil, fmt.Errorf("zmq: %v socket fd: %w", t, en)
	}
	// libzmq makes it non-blocking already; os.NewFile registers only a
	// non-blocking descriptor with the poller, so make sure.
	if err := syscall.SetNonblock(int(dup), true); err != nil {
		syscall.Close(int(dup))
		C.zmq_close(h)
		return nil, fmt.Errorf("zmq: %v socket fd: %w", t, err)
	}
	s.f = os.NewFile(dup, "zmq-"+t.String())
	rc, err := s.f.SyscallConn()
	if err != nil {
		s.f.Close()
		C.zmq_close(h)
		return nil, fmt.Errorf("zmq: %v socket fd: %w", t, err)
	}
	s.rc = rc
	s.tryRecv = s.tryRecvNow
	if s.msg = C.znewmsg(); s.msg == 0 {
		s.f.Close()
		C.zmq_close(h)
		return nil, fmt.Errorf("zmq: %v socket: out of memory", t)
	}
	rt := o.RecvTimeout
	if rt == 0 {
		rt = DefaultTimeout
	}
	s.rto = time.Duration(rt) * time.Millisecond
	return s, nil
}

func (s *Socket) setOptions(o Options) error {
	set := func(opt C.int, v int) error {
		if e := C.zsetint(s.h, opt, C.int(v)); e != 0 {
			return errno(e)
		}
		return nil
	}
	setStr := func(opt C.int, v string) error {
		var p unsafe.Pointer
		if v != "" {
			cs := C.CString(v)
			defer C.free(unsafe.Pointer(cs))
			p = unsafe.Pointer(cs)
		}
		if e := C.zsetbytes(s.h, opt, p, C.size_t(len(v))); e != 0 {
			return errno(e)
		}
		return nil
	}
	linger := 0
	if o.LingerSet {
		linger = o.Linger
	}
	// czmq (which this layer used before) defaulted both HWMs to 1000, as
	// libzmq does; the explicit values keep that whatever the library.
	sndhwm, rcvhwm := 1000, 1000
	if o.SndHWM != 0 {
		sndhwm = o.SndHWM
	}
	if o.RcvHWM != 0 {
		rcvhwm = o.RcvHWM
	}
	st := o.SendTimeout
	if st == 0 {
		st = DefaultTimeout
	}
	steps := []func() error{
		func() error { return set(C.ZMQ_LINGER, linger) },
		func() error { return set(C.ZMQ_SNDHWM, sndhwm) },
		func() error { return set(C.ZMQ_RCVHWM, rcvhwm) },
		// Only the slow path of Send blocks in libzmq; Recv waits in Go.
		func() error { return set(C.ZMQ_SNDTIMEO, st) },
	}
	if o.Identity != "" {
		steps = append(steps, func() error { return setStr(C.ZMQ_IDENTITY, o.Identity) })
	}
	if o.RouterMandatory && s.t == Router {
		steps = append(steps, func() error { return set(C.ZMQ_ROUTER_MANDATORY, 1) })
	}
	if o.Immediate {
		steps = append(steps, func() error { return set(C.ZMQ_IMMEDIATE, 1) })
	}
	if o.TCPKeepalive {
		steps = append(steps, func() error { return set(C.ZMQ_TCP_KEEPALIVE, 1) })
	}
	if o.NoDrop && (s.t == Pub || s.t == XPub) {
		steps = append(steps, func() error { return set(C.ZMQ_XPUB_NODROP, 1) })
	}
	for _, sub := range o.Subscribe {
		steps = append(steps, func() error { return setStr(C.ZMQ_SUBSCRIBE, sub) })
	}
	for _, f := range steps {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// Type returns the socket type.
func (s *Socket) Type() Type { return s.t }

// Bind binds to spec. libzmq processes pending commands first, a poll that
// a signal (Go's preemption uses SIGURG) can interrupt: EINTR is retried.
func (s *Socket) Bind(spec string) error {
	if s.h == nil {
		return ErrClosed
	}
	prepareIPC(spec)
	cs := C.CString(spec)
	defer C.free(unsafe.Pointer(cs))
	for i := 0; ; i++ {
		e := C.zbind(s.h, cs)
		if e == 0 {
			break
		}
		if e != C.EINTR || i == 20 {
			return fmt.Errorf("zmq: bind %v to %s: %w", s.t, spec, errno(e))
		}
	}
	return chmodIPC(spec, s.opts.IPCFileMode)
}

// Connect connects to spec (the peer need not exist yet). An interrupted
// call is retried.
func (s *Socket) Connect(spec string) error {
	if s.h == nil {
		return ErrClosed
	}
	prepareIPC(spec)
	cs := C.CString(spec)
	defer C.free(unsafe.Pointer(cs))
	var e C.int
	for i := 0; i < 20; i++ {
		if e = C.zconnect(s.h, cs); e != C.EINTR {
			break
		}
	}
	if e != 0 {
		return fmt.Errorf("zmq: connect %v to %s: %w", s.t, spec, errno(e))
	}
	return nil
}

// Subscribe adds a SUB prefix.
func (s *Socket) Subscribe(prefix string) { s.setSub(C.ZMQ_SUBSCRIBE, prefix) }

// Unsubscribe removes a SUB prefix.
func (s *Socket) Unsubscribe(prefix string) { s.setSub(C.ZMQ_UNSUBSCRIBE, prefix) }

func (s *Socket) setSub(opt C.int, prefix string) {
	if s.h == nil {
		return
	}
	var p unsafe.Pointer
	if prefix != "" {
		cs := C.CString(prefix)
		defer C.free(unsafe.Pointer(cs))
		p = unsafe.Pointer(cs)
	}
	C.zsetbytes(s.h, opt, p, C.size_t(len(prefix)))
}

func sendErr(t Type, e C.int) error {
	switch e {
	case C.EAGAIN:
		return ErrTimeout
	case C.EHOSTUNREACH:
		return ErrUnreachable
	case C.ETERM, C.ENOTSOCK:
		return ErrClosed
	}
	return fmt.Errorf("zmq: send on %v: %w", t, errno(e))
}

// sendNow sends a message only if the socket takes it at once
// (ErrTimeout: a full high-water mark, nothing was sent).
func (s *Socket) sendNow(frames [][]byte) error {
	if s.h == nil {
		return ErrClosed
	}
	if len(frames) == 0 {
		return nil
	}
	f := frames[0]
	var p C.uintptr_t
	if len(f) > 0 {
		p = C.uintptr_t(uintptr(unsafe.Pointer(&f[0])))
	}
	flags := C.int(C.ZMQ_DONTWAIT)
	if len(frames) > 1 {
		flags |= C.ZMQ_SNDMORE
	}
	for {
		e := C.zsend(s.hp, p, C.size_t(len(f)), flags)
		runtime.KeepAlive(f)
		if e == 0 {
			break
		}
		if e != C.EINTR {
			return sendErr(s.t, e)
		}
	}
	// The rest of a started message always goes (libzmq checks the
	// high-water mark on a message's first frame only).
	for i, f := range frames[1:] {
		var p C.uintptr_t
		if len(f) > 0 {
			p = C.uintptr_t(uintptr(unsafe.Pointer(&f[0])))
		}
		flags := C.int(0)
		if i < len(frames)-2 {
			flags = C.ZMQ_SNDMORE
		}
		for {
			e := C.zsend(s.hp, p, C.size_t(len(f)), flags)
			runtime.KeepAlive(f)
			if e == 0 {
				break
			}
			if e != C.EINTR && e != C.EAGAIN {
				return sendErr(s.t, e)
			}
		}
	}
	return nil
}

// Send sends a multipart message. The first frame is tried without
// waiting; a full high-water mark makes it wait up to the send timeout in
// libzmq. EINTR is retried frame by frame, so a signal never leaves half a
// message queued.
func (s *Socket) Send(frames ...[]byte) error {
	if s.h == nil {
		return ErrClosed
	}
	for i, f := range frames {
		flags := C.int(C.ZMQ_DONTWAIT)
		if i < len(frames)-1 {
			flags |= C.ZMQ_SNDMORE
		}
		var p C.uintptr_t
		if len(f) > 0 {
			p = C.uintptr_t(uintptr(unsafe.Pointer(&f[0])))
		}
		for {
			e := C.zsend(s.hp, p, C.size_t(len(f)), flags)
			runtime.KeepAlive(f)
			if e == 0 {
				break
			}
			switch {
			case e == C.EINTR:
				continue
			case e == C.EAGAIN && flags&C.ZMQ_DONTWAIT != 0:
				// Blocking retry, bounded by ZMQ_SNDTIMEO for the first
				// frame; later frames of a started message always go.
				flags &^= C.ZMQ_DONTWAIT
				continue
			case e == C.EAGAIN && i > 0:
				continue
			}
			return sendErr(s.t, e)
		}
	}
	return nil
}

// Recv receives one whole multipart message. It returns ErrTimeout when
// nothing arrived within the receive timeout. Frames after the first are
// already in memory (ZeroMQ delivers messages atomically).
func (s *Socket) Recv() ([][]byte, error) { return s.recvAppend(nil) }

// recvAppend is Recv appending the frames to dst (RecvLoop reuses it).
//
// The receive attempt is the poller's readiness check: rc.Read arms the
// poller first, then calls it, and parks only when it finds nothing, so a
// wake-up between the attempt and the park is not lost. ZMQ_FD is
// edge-like (it signals that the socket's state may have changed), and the
// attempt, which processes libzmq's pending commands, is what re-arms it.
func (s *Socket) recvAppend(dst [][]byte) ([][]byte, error) {
	if s.h == nil {
		return nil, ErrClosed
	}
	if s.rto >= 0 {
		// The deadline stays while it is at least half the timeout away:
		// setting it costs a timer update, and a Recv that returns early
		// with ErrTimeout is still within its bound.
		if now := time.Now(); s.dl.Sub(now) < s.rto/2 {
			s.dl = now.Add(s.rto)
			if err := s.f.SetReadDeadline(s.dl); err != nil {
				return nil, ErrClosed
			}
		}
	}
	s.rdst = dst
	err := s.rc.Read(s.tryRecv)
	msg, rerr := s.rmsg, s.rerr
	s.rdst, s.rmsg, s.rerr = nil, nil, nil
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, ErrTimeout
	case err != nil:
		return nil, ErrClosed
	}
	return msg, rerr
}

// tryRecvNow is recvAppend's readiness check; its arguments and results go
// through the socket so that the func value is made once per socket, not
// allocated per receive.
func (s *Socket) tryRecvNow(uintptr) bool {
	s.rmsg, s.rerr = s.recvNow(s.rdst)
	return s.rerr != errAgain
}

var errAgain = errors.New("zmq: nothing queued")

// recvNow takes a queued message without waiting (errAgain: none),
// appending its frames to msg.
func (s *Socket) recvNow(msg [][]byte) ([][]byte, error) {
	first := len(msg)
	flags := C.int(C.ZMQ_DONTWAIT)
	for {
		r := C.zrecv(s.hp, s.msg, flags)
		if r.err != 0 {
			switch {
			case r.err == C.EINTR:
				continue
			case r.err == C.EAGAIN && len(msg) == first:
				return nil, errAgain
			case r.err == C.EAGAIN:
				flags = 0 // cannot happen (atomic delivery); wait for the rest
				continue
			case r.err == C.ETERM || r.err == C.ENOTSOCK:
				return nil, ErrClosed
			}
			return nil, fmt.Errorf("zmq: recv on %v: %w", s.t, errno(r.err))
		}
		b := make([]byte, int(r.size))
		if r.size > 0 {
			copy(b, unsafe.Slice((*byte)(r.data), int(r.size)))
		}
		if msg == nil && r.more == 0 {
			return [][]byte{b}, nil // one allocation for the usual single frame
		}
		msg = append(msg, b)
		if r.more == 0 {
			return msg, nil
		}
	}
}

// Close destroys the socket. Pending outgoing messages are dropped after
// the linger period.
func (s *Socket) Close() {
	if s.h == nil {
		return
	}
	s.f.Close()
	C.zfreemsg(s.msg)
	C.zmq_close(s.h)
	s.h, s.hp, s.msg = nil, 0, 0
}
