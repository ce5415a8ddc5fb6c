package connmgr

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/proto/zmq"
)

// Retry of a packet to an identity the ROUTER does not know (yet): right
// after a handoff the new owner may still be connecting.
const (
	unreachableFor   = 500 * time.Millisecond
	unreachableRetry = 5 * time.Millisecond
	routerQueueMax   = 100000
)

// router sends later packets on the ROUTER socket (ROUTER_MANDATORY) as
// [server-id, "", packet]. A packet is sent on the caller's goroutine,
// under mu, when nothing is waiting and the socket takes it: handing each
// one to a goroutine cost a wake-up per packet, more than the send. A
// packet the socket refuses (unknown identity, full high-water mark) is
// queued, and so is every later one until the queue is empty again, so
// packets leave in the order they were given (seqs of a session, which
// callers take under the session lock, stay in order). run retries the
// head of the queue for unreachableFor, then drops it, as before.
type router struct {
	log zerolog.Logger

	mu      sync.Mutex
	sock    *zmq.Socket // nil once stopped
	q       []routed    // waiting for run, oldest first
	first   time.Time   // when q[0] was first found unreachable (zero: not yet)
	wake    chan struct{}
	notFull *sync.Cond
	ids     map[string][]byte // identity frames, made once per server
}

// routed is a packet for the ROUTER: the server identity and the message.
type routed struct {
	to  string
	msg []byte
}

func newRouter(sock *zmq.Socket, log zerolog.Logger) *router {
	r := &router{log: log, sock: sock, wake: make(chan struct{}, 1), ids: map[string][]byte{}}
	r.notFull = sync.NewCond(&r.mu)
	return r
}

// send sends msg to the server with identity to, or queues a copy of it
// behind earlier packets (msg is not kept: callers encode into a reused
// buffer). It waits while the queue is full (the back-pressure of
// a stuck socket) and drops the packet once the router stopped.
func (r *router) send(to string, msg []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.sock != nil && len(r.q) >= routerQueueMax {
		r.notFull.Wait()
	}
	if r.sock == nil {
		return
	}
	if len(r.q) == 0 {
		// Never wait here for a full high-water mark: the caller holds a
		// session lock; run does the waiting.
		err := r.sock.TrySend(r.id(to), nil, msg)
		if err == nil {
			return
		}
		if !errors.Is(err, zmq.ErrUnreachable) && !errors.Is(err, zmq.ErrTimeout) {
			r.log.Debug().Err(err).Str("to", to).Msg("dropping packet to server")
			return
		}
		if errors.Is(err, zmq.ErrUnreachable) {
			r.first = time.Now()
		}
	}
	r.q = append(r.q, routed{to: to, msg: append([]byte(nil), msg...)})
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// id is the identity frame for server to (under mu): a conversion per
// packet would allocate per packet.
func (r *router) id(to string) []byte {
	b, ok := r.ids[to]
	if !ok {
		if len(r.ids) >= 1024 {
			clear(r.ids) // servers come and go (Pushpin's ids carry a pid)
		}
		b = []byte(to)
		r.ids[to] = b
	}
	return b
}

// run retries queued packets until ctx ends, then closes the socket.
func (r *router) run(ctx context.Context) {
	defer func() {
		r.mu.Lock()
		r.sock.Close()
		r.sock, r.q = nil, nil
		r.notFull.Broadcast()
		r.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		}
		for ctx.Err() == nil && r.retry() {
			time.Sleep(unreachableRetry)
		}
	}
}

// retry sends what the queue holds, oldest first; true when its head is
// still unreachable and should be tried again after a pause.
func (r *router) retry() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.q) > 0 {
		m := r.q[0]
		err := r.sock.Send(r.id(m.to), nil, m.msg)
		switch {
		case errors.Is(err, zmq.ErrTimeout):
			return true
		case errors.Is(err, zmq.ErrUnreachable):
			if r.first.IsZero() {
				r.first = time.Now()
			}
			if time.Since(r.first) < unreachableFor {
				return true
			}
			fallthrough
		case err != nil:
			r.log.Debug().Err(err).Str("to", m.to).Msg("dropping packet to server")
		}
		r.q[0] = routed{}
		r.q = r.q[1:]
		r.first = time.Time{}
		r.notFull.Signal()
	}
	r.q = nil // let the backing array go
	return false
}
