package zmq

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// RecvLoop receives messages on s until ctx is done, calling fn for each in
// this goroutine, then closes s. It is the whole life of a receive-only
// socket (PULL, SUB, receive-side ROUTER). Errors other than timeouts are
// passed to onErr (may be nil) and the loop goes on: one bad peer must not
// stop the process. The msg slice is reused once fn returns; the frames in
// it are not, and fn may keep them.
func RecvLoop(ctx context.Context, s *Socket, fn func(msg [][]byte), onErr func(error)) {
	defer s.Close()
	var buf [][]byte
	for ctx.Err() == nil {
		msg, err := s.recvAppend(buf[:0])
		if err != nil {
			if errors.Is(err, ErrTimeout) {
				continue
			}
			if errors.Is(err, ErrClosed) {
				return
			}
			if onErr != nil {
				onErr(err)
			}
			time.Sleep(time.Millisecond)
			continue
		}
		fn(msg)
		if cap(msg) <= 8 {
			clear(msg)
			buf = msg
		}
	}
}

// Sender owns a send-only socket (PUSH, PUB, send-side ROUTER) and sends
// what other goroutines give it with Send, in order. When nothing is queued
// and the socket takes the message at once, Send sends it on the caller's
// goroutine (under mu): waking the sender goroutine for every message cost
// more than the send. Otherwise the message is queued for Run, and every
// later one too until the queue is empty again, so order is kept.
type Sender struct {
	s       *Socket
	before  func(ctx context.Context, s *Socket) // see Hold
	q       chan [][]byte
	mu      sync.Mutex   // the socket; closed
	pending atomic.Int64 // messages queued or being sent by Run
	closed  bool
	dropped atomic.Uint64
	onErr   func(msg [][]byte, err error)
	done    chan struct{}
}

// NewSender wraps s; queue bounds the messages waiting for the socket.
// onErr (may be nil) is told about messages that could not be sent
// (unroutable ROUTER identity, closed socket).
func NewSender(s *Socket, queue int, onErr func(msg [][]byte, err error)) *Sender {
	return &Sender{s: s, q: make(chan [][]byte, queue), onErr: onErr, done: make(chan struct{})}
}

// direct tries to send at once; it reports whether the message is dealt
// with (sent, or failed for good and reported).
func (w *Sender) direct(frames [][]byte) bool {
	if w.pending.Load() != 0 || !w.mu.TryLock() {
		return false
	}
	defer w.mu.Unlock()
	if w.pending.Load() != 0 || w.closed {
		return false
	}
	err := w.s.sendNow(frames)
	switch {
	case err == nil:
		return true
	case errors.Is(err, ErrTimeout):
		return false // full high-water mark: Run retries it
	}
	if w.onErr != nil {
		w.onErr(frames, err)
	}
	return true
}

// Send sends or queues a message; it blocks while the queue is full, and
// drops the message once the sender has stopped.
func (w *Sender) Send(frames ...[]byte) {
	if w.direct(frames) {
		return
	}
	w.pending.Add(1)
	select {
	case w.q <- frames:
	case <-w.done:
		w.pending.Add(-1)
		w.dropped.Add(1)
	}
}

// TrySend sends or queues a message without blocking; it reports false
// (and counts a drop) when the queue is full.
func (w *Sender) TrySend(frames ...[]byte) bool {
	if w.direct(frames) {
		return true
	}
	w.pending.Add(1)
	select {
	case w.q <- frames:
		return true
	default:
		w.pending.Add(-1)
		w.dropped.Add(1)
		return false
	}
}

// Hold makes every message wait in the queue until Run has called
// before, which has the socket to itself first: the handler waits there
// for the connection managers to subscribe (WaitSubscribed), since a PUB
// drops what it sends before a subscription has reached it. Call it
// before Run and before the first Send.
func (w *Sender) Hold(before func(ctx context.Context, s *Socket)) {
	w.before = before
	w.pending.Add(1) // no direct sends until before has returned
}

// Dropped counts messages dropped by TrySend or after stop.
func (w *Sender) Dropped() uint64 { return w.dropped.Load() }

// Run sends queued messages until ctx is done, then closes the socket.
// A message blocked by a full high-water mark is retried until it goes or
// ctx ends; ordering is kept.
func (w *Sender) Run(ctx context.Context) {
	defer close(w.done)
	defer func() {
		w.mu.Lock()
		w.closed = true
		w.s.Close()
		w.mu.Unlock()
	}()
	if w.before != nil {
		w.before(ctx, w.s)
		w.pending.Add(-1)
	}
	for {
		select {
		case <-ctx.Done():
			w.mu.Lock()
			w.drain()
			w.mu.Unlock()
			return
		case msg := <-w.q:
			w.mu.Lock()
			w.send(ctx, msg)
			w.pending.Add(-1)
			w.mu.Unlock()
		}
	}
}

func (w *Sender) send(ctx context.Context, msg [][]byte) {
	for {
		err := w.s.Send(msg...)
		if err == nil {
			return
		}
		if errors.Is(err, ErrTimeout) && ctx.Err() == nil {
			continue
		}
		if w.onErr != nil {
			w.onErr(msg, err)
		}
		return
	}
}

// drain sends what is already queued, briefly, so a clean stop does not
// lose the last messages (e.g. a final response packet).
func (w *Sender) drain() {
	deadline := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(deadline) {
		select {
		case msg := <-w.q:
			w.pending.Add(-1)
			if err := w.s.Send(msg...); err != nil {
				return
			}
		default:
			return
		}
	}
}

// Locked lets any goroutine send on a socket, one at a time, on the
// caller's own goroutine. A Sender costs a goroutine hand-off per message
// (a wake-up of its goroutine whenever the queue was empty); Locked costs
// an uncontended mutex. The caller waits while a full high-water mark
// holds the socket, which is the back-pressure a Sender's full queue gave.
type Locked struct {
	mu    sync.Mutex
	s     *Socket
	buf   []byte
	onErr func(msg [][]byte, err error)
}

// NewLocked wraps s; onErr (may be nil) is told about messages that could
// not be sent (unroutable ROUTER identity, closed socket).
func NewLocked(s *Socket, onErr func(msg [][]byte, err error)) *Locked {
	return &Locked{s: s, onErr: onErr}
}

// Send sends a message, retrying while the high-water mark is reached
// until ctx ends; it reports whether the message went.
func (l *Locked) Send(ctx context.Context, frames ...[]byte) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sendLocked(ctx, frames)
}

// SendEncoded sends a single-frame message that encode appends to a buffer
// owned by l (reused, so encoding allocates nothing); encode runs under
// l's lock, so whatever it stamps (sequence numbers) leaves in that order.
func (l *Locked) SendEncoded(ctx context.Context, encode func(dst []byte) []byte) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = encode(l.buf[:0])
	ok := l.sendLocked(ctx, [][]byte{l.buf})
	if cap(l.buf) > 256<<10 {
		l.buf = nil // a rare big message must not stay pinned
	}
	return ok
}

func (l *Locked) sendLocked(ctx context.Context, frames [][]byte) bool {
	if l.s == nil {
		if l.onErr != nil {
			l.onErr(frames, ErrClosed)
		}
		return false
	}
	for {
		err := l.s.Send(frames...)
		if err == nil {
			return true
		}
		if errors.Is(err, ErrTimeout) && ctx.Err() == nil {
			continue
		}
		if l.onErr != nil {
			l.onErr(frames, err)
		}
		return false
	}
}

// Close closes the socket; later sends fail with ErrClosed.
func (l *Locked) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.s != nil {
		l.s.Close()
		l.s = nil
	}
}
