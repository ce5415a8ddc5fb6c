//go:build purego

package zmq

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	zmq4 "github.com/go-zeromq/zmq4"
)

// SubscriptionsVisible tells whether an XPUB hands subscriptions to Recv:
// go-zeromq's hands none to the application (purego.md).
const SubscriptionsVisible = false

// Transport names the compiled-in implementation.
const Transport = "pure Go (go-zeromq/zmq4) — see purego.md for its interop limits"

// Socket is a ZeroMQ socket; see the package comment for the ownership rule.
// go-zeromq's Recv has no timeout, so a pump goroutine receives into a
// channel and Recv waits on it with the configured timeout.
type Socket struct {
	t      Type
	s      zmq4.Socket
	opts   Options
	cancel context.CancelFunc
	in     chan recvResult
	pumped bool
	wake   chan struct{} // Wake; capacity 1
}

type recvResult struct {
	msg zmq4.Msg
	err error
}

// New creates a socket with its options applied.
func New(t Type, o Options) (*Socket, error) {
	ctx, cancel := context.WithCancel(context.Background())
	var zo []zmq4.Option
	if o.Identity != "" {
		zo = append(zo, zmq4.WithID(zmq4.SocketIdentity(o.Identity)))
	}
	zo = append(zo, zmq4.WithDialerRetry(100*time.Millisecond))
	var s zmq4.Socket
	switch t {
	case Pair:
		s = zmq4.NewPair(ctx, zo...)
	case Pub:
		s = zmq4.NewPub(ctx, zo...)
	case Sub:
		s = zmq4.NewSub(ctx, zo...)
	case Req:
		s = zmq4.NewReq(ctx, zo...)
	case Rep:
		s = zmq4.NewRep(ctx, zo...)
	case Dealer:
		s = zmq4.NewDealer(ctx, zo...)
	case Router:
		s = zmq4.NewRouter(ctx, zo...)
	case Pull:
		s = zmq4.NewPull(ctx, zo...)
	case Push:
		s = zmq4.NewPush(ctx, zo...)
	case XPub:
		s = zmq4.NewXPub(ctx, zo...)
	case XSub:
		s = zmq4.NewXSub(ctx, zo...)
	default:
		cancel()
		return nil, fmt.Errorf("zmq: unsupported socket type %v", t)
	}
	sock := &Socket{t: t, s: s, opts: o, cancel: cancel, in: make(chan recvResult, 64), wake: make(chan struct{}, 1)}
	for _, sub := range o.Subscribe {
		sock.Subscribe(sub)
	}
	return sock, nil
}

// Type returns the socket type.
func (s *Socket) Type() Type { return s.t }

func addr(spec string) string {
	// go-zeromq wants ipc paths without the leading "//" handling libzmq has.
	return spec
}

// Bind binds to spec.
func (s *Socket) Bind(spec string) error {
	prepareIPC(spec)
	if err := s.s.Listen(addr(spec)); err != nil {
		return fmt.Errorf("zmq: bind %v to %s: %w", s.t, spec, err)
	}
	return chmodIPC(spec, s.opts.IPCFileMode)
}

// Connect connects to spec.
func (s *Socket) Connect(spec string) error {
	prepareIPC(spec)
	if err := s.s.Dial(addr(spec)); err != nil {
		return fmt.Errorf("zmq: connect %v to %s: %w", s.t, spec, err)
	}
	return nil
}

// Reap is a no-op here: go-zeromq releases a peer's connection itself.
func (s *Socket) Reap() {}

// Subscribe adds a SUB prefix.
func (s *Socket) Subscribe(prefix string) { _ = s.s.SetOption(zmq4.OptionSubscribe, prefix) }

// Unsubscribe removes a SUB prefix.
func (s *Socket) Unsubscribe(prefix string) { _ = s.s.SetOption(zmq4.OptionUnsubscribe, prefix) }

// Send sends a multipart message.
func (s *Socket) Send(frames ...[]byte) error {
	if s.s == nil {
		return ErrClosed
	}
	err := s.s.SendMulti(zmq4.NewMsgFrom(frames...))
	if err != nil && s.t == Router && strings.Contains(err.Error(), "no connection") {
		return ErrUnreachable
	}
	return err
}

// sendNow never sends here: this transport's Send may block, so Sender
// always queues.
func (s *Socket) sendNow(_ [][]byte) error { return ErrTimeout }

// TrySend never sends here (see sendNow): callers queue and Send later.
func (s *Socket) TrySend(frames ...[]byte) error { return s.sendNow(frames) }

// recvAppend is Recv for RecvLoop (this transport allocates anyway).
func (s *Socket) recvAppend(_ [][]byte) ([][]byte, error) { return s.Recv() }

// Recv receives one whole message, or ErrTimeout.
func (s *Socket) Recv() ([][]byte, error) {
	if s.s == nil {
		return nil, ErrClosed
	}
	if !s.pumped {
		s.pumped = true
		go func(sock zmq4.Socket, in chan<- recvResult) {
			for {
				m, err := sock.Recv()
				in <- recvResult{m, err}
				if err != nil {
					return
				}
			}
		}(s.s, s.in)
	}
	d := s.opts.RecvTimeout
	if d == 0 {
		d = DefaultTimeout
	}
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(time.Duration(d) * time.Millisecond)
		defer t.Stop()
		timeout = t.C
	}
	for {
		select {
		case r := <-s.in:
			if r.err != nil {
				if errors.Is(r.err, context.Canceled) {
					return nil, ErrClosed
				}
				return nil, r.err
			}
			if tooBig(r.msg.Frames, s.opts.MaxMsgSize) {
				continue // as libzmq drops it (zmq4 has no such option)
			}
			return r.msg.Frames, nil
		case <-timeout:
			return nil, ErrTimeout
		case <-s.wake:
			return nil, ErrTimeout
		}
	}
}

// Wake makes a Recv waiting on s return ErrTimeout now, or the next Recv
// if none is waiting; it may be called from any goroutine.
func (s *Socket) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func tooBig(frames [][]byte, max int64) bool {
	if max <= 0 {
		return false
	}
	for _, f := range frames {
		if int64(len(f)) > max {
			return true
		}
	}
	return false
}

// Close closes the socket.
func (s *Socket) Close() {
	if s.s != nil {
		_ = s.s.Close()
		s.cancel()
		s.s = nil
	}
}
