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
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/zeromq/goczmq"
)

// SubscriptionsVisible tells whether an XPUB hands subscriptions to Recv:
// libzmq's does.
const SubscriptionsVisible = true

// Transport names the compiled-in implementation.
const Transport = "libzmq (goczmq)"

var czmqTypes = map[Type]int{
	Pair: goczmq.Pair, Pub: goczmq.Pub, Sub: goczmq.Sub, Req: goczmq.Req, Rep: goczmq.Rep,
	Dealer: goczmq.Dealer, Router: goczmq.Router, Pull: goczmq.Pull, Push: goczmq.Push,
	XPub: goczmq.XPub, XSub: goczmq.XSub,
}

// Socket is a ZeroMQ socket (goczmq); see the package comment for the
// ownership rule.
//
// No call blocks inside libzmq on the fast path: Recv and Send try without
// waiting, and a Recv with nothing queued parks its goroutine in Go's
// network poller on a duplicate of the socket's ZMQ_FD. A goroutine blocked
// in a cgo call pins an OS thread and makes the runtime hand its P to
// another thread each time (sysmon retakes, futex wake-ups): that cost was
// a fifth of the proxy's CPU. Only a Send refused by a full high-water mark
// blocks in libzmq (ZMQ_SNDTIMEO), which is rare and keeps the semantics.
type Socket struct {
	t    Type
	s    *goczmq.Sock
	opts Options
	f    *os.File // dup of ZMQ_FD, registered with the poller
	rc   syscall.RawConn
	rto  time.Duration // < 0: Recv blocks forever
	dl   time.Time     // the read deadline set on f
	// woken is set by Wake (any goroutine) before it moves f's deadline to
	// the past; clearDl: a deadline Wake set must be cleared (rto < 0).
	woken   atomic.Bool
	clearDl bool

	tryRecv    func(uintptr) bool // s.tryRecvNow, made once
	rdst, rmsg [][]byte
	rerr       error
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
	if o.MaxMsgSize > 0 {
		s.SetMaxmsgsize(int(min(o.MaxMsgSize, math.MaxInt32)))
	}
	if o.TCPKeepalive {
		s.SetTcpKeepalive(1)
	}
	if o.NoDrop && (t == Pub || t == XPub) {
		s.SetXPubNodrop(1)
	}
	if o.XPubVerbose && t == XPub {
		s.SetXPubVerbose(1)
	}
	st := o.SendTimeout
	if st == 0 {
		st = DefaultTimeout
	}
	// Only the slow path of Send blocks in libzmq; Recv waits in Go.
	s.SetSndtimeo(st)
	for _, sub := range o.Subscribe {
		s.SetSubscribe(sub)
	}
	// A duplicate of ZMQ_FD, so closing the os.File (which deregisters it
	// from the poller) leaves libzmq's own descriptor alone.
	dup, _, en := syscall.Syscall(syscall.SYS_FCNTL, uintptr(s.Fd()), syscall.F_DUPFD_CLOEXEC, 0)
	if en != 0 {
		s.Destroy()
		return nil, fmt.Errorf("zmq: %v socket fd: %w", t, en)
	}
	// os.NewFile registers only a non-blocking descriptor with the poller.
	if err := syscall.SetNonblock(int(dup), true); err != nil {
		syscall.Close(int(dup))
		s.Destroy()
		return nil, fmt.Errorf("zmq: %v socket fd: %w", t, err)
	}
	f := os.NewFile(dup, "zmq-"+t.String())
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		s.Destroy()
		return nil, fmt.Errorf("zmq: %v socket fd: %w", t, err)
	}
	rt := o.RecvTimeout
	if rt == 0 {
		rt = DefaultTimeout
	}
	sock := &Socket{t: t, s: s, opts: o, f: f, rc: rc, rto: time.Duration(rt) * time.Millisecond}
	sock.tryRecv = sock.tryRecvNow
	return sock, nil
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
	if s.s == nil {
		return ErrClosed
	}
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
	if s.s == nil {
		return ErrClosed
	}
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
func (s *Socket) Subscribe(prefix string) {
	if s.s != nil {
		s.s.SetSubscribe(prefix)
	}
}

// Unsubscribe removes a SUB prefix.
func (s *Socket) Unsubscribe(prefix string) {
	if s.s != nil {
		s.s.SetUnsubscribe(prefix)
	}
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
	return fmt.Errorf("zmq: send on %v: %s (errno %d)", t, C.GoString(C.zstrerror(e)), int(e))
}

// send sends frames; wait says whether a full high-water mark on the first
// frame may block (up to ZMQ_SNDTIMEO) or returns ErrTimeout at once. The
// rest of a started message always goes (libzmq checks the high-water mark
// on a message's first frame only); EINTR is retried frame by frame, so a
// signal never leaves half a message queued.
func (s *Socket) send(frames [][]byte, wait bool) error {
	if s.s == nil {
		return ErrClosed
	}
	runtime.LockOSThread() // zmq_errno() must be read on the thread that failed
	defer runtime.UnlockOSThread()
	for i, f := range frames {
		flags := goczmq.FlagDontWait
		if i < len(frames)-1 {
			flags |= goczmq.FlagMore
		}
		for s.s.SendFrame(f, flags) != nil {
			switch e := C.zerrno(); {
			case e == C.EINTR:
				continue
			case e == C.EAGAIN && i == 0 && wait && flags&goczmq.FlagDontWait != 0:
				flags &^= goczmq.FlagDontWait // blocking retry, bounded by ZMQ_SNDTIMEO
				continue
			case e == C.EAGAIN && i > 0:
				continue
			default:
				return sendErr(s.t, e)
			}
		}
	}
	return nil
}

// sendNow sends a message only if the socket takes it at once
// (ErrTimeout: a full high-water mark, nothing was sent).
func (s *Socket) sendNow(frames [][]byte) error {
	if len(frames) == 0 {
		return nil
	}
	return s.send(frames, false)
}

// Send sends a multipart message, waiting up to the send timeout when the
// high-water mark is reached.
func (s *Socket) Send(frames ...[]byte) error { return s.send(frames, true) }

// TrySend is Send without the wait: ErrTimeout says the high-water mark is
// reached and nothing was sent.
func (s *Socket) TrySend(frames ...[]byte) error { return s.sendNow(frames) }

// Recv receives one whole multipart message. It returns ErrTimeout when
// nothing arrived within the receive timeout. Frames after the first are
// already in memory (ZeroMQ delivers messages atomically).
func (s *Socket) Recv() ([][]byte, error) { return s.recvAppend(nil) }

// recvAppend is Recv appending the frames to dst (RecvLoop reuses it).
//
// The receive attempt is the poller's readiness check: rc.Read arms the
// poller first, then calls it, and parks only when it finds nothing, so a
// wake-up between the attempt and the park is not lost. ZMQ_FD is
// edge-like (it signals that the socket's state may have changed), and
// reading ZMQ_EVENTS, which processes libzmq's pending commands, is what
// re-arms it.
func (s *Socket) recvAppend(dst [][]byte) ([][]byte, error) {
	if s.s == nil {
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
	} else if s.clearDl {
		s.clearDl = false
		if err := s.f.SetReadDeadline(time.Time{}); err != nil {
			return nil, ErrClosed
		}
	}
	// After the deadline is set, so that a Wake whose past deadline the
	// line above overwrote is still seen.
	if s.woken.Load() && s.woken.Swap(false) {
		return nil, ErrTimeout
	}
	s.rdst = dst
	err := s.rc.Read(s.tryRecv)
	msg, rerr := s.rmsg, s.rerr
	s.rdst, s.rmsg, s.rerr = nil, nil, nil
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		if s.rto < 0 || time.Now().Before(s.dl) {
			// Not our deadline: a Wake's. Re-arm ours next time.
			s.dl, s.clearDl = time.Time{}, true
		}
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
// appending its frames to msg. ZMQ_EVENTS says whether a message is
// there; once its first frame is, the whole message is.
func (s *Socket) recvNow(msg [][]byte) ([][]byte, error) {
	if s.s.Events()&goczmq.Pollin == 0 {
		return nil, errAgain
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for {
		f, more, err := s.s.RecvFrame()
		if err != nil {
			switch e := C.zerrno(); e {
			case C.EINTR:
				continue
			case C.ETERM, C.ENOTSOCK:
				return nil, ErrClosed
			default:
				return nil, fmt.Errorf("zmq: recv on %v: %s (errno %d)", s.t, C.GoString(C.zstrerror(e)), int(e))
			}
		}
		if msg == nil && more == 0 {
			return [][]byte{f}, nil // one allocation for the usual single frame
		}
		msg = append(msg, f)
		if more == 0 {
			return msg, nil
		}
	}
}

// Wake makes a Recv waiting on s return ErrTimeout now, or the next Recv
// if none is waiting. Unlike every other method it may be called from any
// goroutine, also while the owner closes s: it lets another goroutine hand
// the owner work between receives without waiting out the timeout.
func (s *Socket) Wake() {
	s.woken.Store(true)
	_ = s.f.SetReadDeadline(time.Unix(1, 0))
}

// Reap lets libzmq handle the socket's pending commands, as any receive
// does. A socket that is only ever sent on (connmgr's ROUTER) needs it: the
// pipe of a peer that left is released only once the socket reads the
// pipe's end, so without it every peer that ever left stays allocated, and
// one reconnecting with the same identity is refused as a duplicate.
func (s *Socket) Reap() {
	if s.s != nil {
		_ = s.s.Events()
	}
}

// Close destroys the socket. Pending outgoing messages are dropped after
// the linger period.
func (s *Socket) Close() {
	if s.s == nil {
		return
	}
	s.f.Close()
	s.s.Destroy()
	s.s = nil
}
