//go:build !purego

package zmq

/*
#cgo pkg-config: libzmq libczmq
#include <zmq.h>
#include <czmq.h>
#include <errno.h>
static int zerrno(void) { return zmq_errno(); }
static const char *zstrerror(int e) { return zmq_strerror(e); }
*/
import "C"

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/zeromq/goczmq"
)

// Transport names the compiled-in implementation.
const Transport = "libzmq (goczmq)"

var czmqTypes = map[Type]int{
	Pair: goczmq.Pair, Pub: goczmq.Pub, Sub: goczmq.Sub, Req: goczmq.Req, Rep: goczmq.Rep,
	Dealer: goczmq.Dealer, Router: goczmq.Router, Pull: goczmq.Pull, Push: goczmq.Push,
	XPub: goczmq.XPub, XSub: goczmq.XSub,
}

// Socket is a ZeroMQ socket; see the package comment for the ownership rule.
type Socket struct {
	t    Type
	s    *goczmq.Sock
	opts Options
}

// czmqInit runs CZMQ's global set-up once: two goroutines creating their
// first sockets at the same moment otherwise race inside zsys_init and
// abort the process.
var czmqInit sync.Once

// New creates a socket with its options applied.
func New(t Type, o Options) (*Socket, error) {
	czmqInit.Do(func() { C.zsys_init() })
	zt, ok := czmqTypes[t]
	if !ok {
		return nil, fmt.Errorf("zmq: unsupported socket type %v", t)
	}
	s := goczmq.NewSock(zt)
	if s == nil {
		return nil, fmt.Errorf("zmq: cannot create %v socket", t)
	}
	if o.Identity != "" {
		s.SetIdentity(o.Identity)
	}
	if o.SndHWM != 0 {
		s.SetSndhwm(o.SndHWM)
	}
	if o.RcvHWM != 0 {
		s.SetRcvhwm(o.RcvHWM)
	}
	if o.LingerSet {
		s.SetLinger(o.Linger)
	} else {
		s.SetLinger(0)
	}
	if o.RouterMandatory && t == Router {
		s.SetRouterMandatory(1)
	}
	if o.Immediate {
		s.SetImmediate(1)
	}
	if o.TCPKeepalive {
		s.SetTcpKeepalive(1)
	}
	if o.NoDrop && (t == Pub || t == XPub) {
		s.SetXPubNodrop(1)
	}
	rt := o.RecvTimeout
	if rt == 0 {
		rt = DefaultTimeout
	}
	s.SetRcvtimeo(rt)
	st := o.SendTimeout
	if st == 0 {
		st = DefaultTimeout
	}
	s.SetSndtimeo(st)
	for _, sub := range o.Subscribe {
		s.SetSubscribe(sub)
	}
	return &Socket{t: t, s: s, opts: o}, nil
}

// Type returns the socket type.
func (s *Socket) Type() Type { return s.t }

// lastError describes the errno of the call that just failed on this
// (locked) thread.
func lastError() string {
	e := C.zerrno()
	return fmt.Sprintf("%s (errno %d)", C.GoString(C.zstrerror(e)), int(e))
}

// Bind binds to spec. libzmq processes pending commands first, a poll that
// a signal (Go's preemption uses SIGURG) can interrupt: EINTR is retried.
func (s *Socket) Bind(spec string) error {
	prepareIPC(spec)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for i := 0; ; i++ {
		if _, err := s.s.Bind(spec); err == nil {
			break
		}
		if C.zerrno() != C.EINTR || i == 20 {
			return fmt.Errorf("zmq: bind %v to %s: %s", s.t, spec, lastError())
		}
	}
	return chmodIPC(spec, s.opts.IPCFileMode)
}

// Connect connects to spec (the peer need not exist yet). An interrupted
// call is retried.
func (s *Socket) Connect(spec string) error {
	prepareIPC(spec)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var msg string
	for i := 0; i < 20; i++ {
		if err := s.s.Connect(spec); err == nil {
			return nil
		}
		msg = lastError()
		if C.zerrno() != C.EINTR {
			break
		}
	}
	return fmt.Errorf("zmq: connect %v to %s: %s", s.t, spec, msg)
}

// Subscribe adds a SUB prefix.
func (s *Socket) Subscribe(prefix string) { s.s.SetSubscribe(prefix) }

// Unsubscribe removes a SUB prefix.
func (s *Socket) Unsubscribe(prefix string) { s.s.SetUnsubscribe(prefix) }

// Send sends a multipart message. EINTR is retried frame by frame, so a
// signal never leaves half a message queued.
func (s *Socket) Send(frames ...[]byte) error {
	if s.s == nil {
		return ErrClosed
	}
	runtime.LockOSThread() // zmq_errno() must be read on the thread that failed
	defer runtime.UnlockOSThread()
	for i, f := range frames {
		flags := 0
		if i < len(frames)-1 {
			flags = goczmq.FlagMore
		}
		for {
			err := s.s.SendFrame(f, flags)
			if err == nil {
				break
			}
			switch C.zerrno() {
			case C.EINTR:
				continue
			case C.EAGAIN:
				if i == 0 {
					return ErrTimeout
				}
				continue // the rest of a started message must go out
			case C.EHOSTUNREACH:
				return ErrUnreachable
			case C.ETERM, C.ENOTSOCK:
				return ErrClosed
			default:
				return fmt.Errorf("zmq: send on %v: errno %d", s.t, int(C.zerrno()))
			}
		}
	}
	return nil
}

// Recv receives one whole multipart message. It returns ErrTimeout when
// nothing arrived within the receive timeout. Frames after the first are
// already in memory (ZeroMQ delivers messages atomically), so an
// interrupted read of one is simply retried.
func (s *Socket) Recv() ([][]byte, error) {
	if s.s == nil {
		return nil, ErrClosed
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var msg [][]byte
	for {
		f, more, err := s.s.RecvFrame()
		if err != nil {
			e := C.zerrno()
			if len(msg) == 0 {
				switch e {
				case C.EINTR:
					continue
				case C.EAGAIN:
					return nil, ErrTimeout
				case C.ETERM, C.ENOTSOCK:
					return nil, ErrClosed
				}
				return nil, fmt.Errorf("zmq: recv on %v: errno %d", s.t, int(e))
			}
			if e == C.ETERM || e == C.ENOTSOCK {
				return nil, ErrClosed
			}
			continue
		}
		msg = append(msg, f)
		if more == 0 {
			return msg, nil
		}
	}
}

// Close destroys the socket. Pending outgoing messages are dropped after
// the linger period.
func (s *Socket) Close() {
	if s.s != nil {
		s.s.Destroy()
		s.s = nil
	}
}
