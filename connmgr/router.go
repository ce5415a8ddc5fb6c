package connmgr

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/proto/zmq"
)

const (
	// unreachableFor is how long packets wait for an identity the ROUTER
	// has never reached: right after a handoff the new owner may still be
	// connecting. An identity once reached and now unreachable has left
	// (Pushpin's ids carry a pid), so its packets are dropped at once, as
	// condure does.
	unreachableFor   = 500 * time.Millisecond
	unreachableRetry = 5 * time.Millisecond
	routerQueueMax   = 100000
	// dropLogEvery rate-limits the warning about packets dropped for a
	// peer: once per peer per interval, with the count.
	dropLogEvery = 10 * time.Second
	// maxPeers bounds the identities remembered; idle ones are forgotten
	// beyond it (servers come and go).
	maxPeers = 1024
	// maxDropped bounds the dropped packets waiting for onDrop; past it
	// they are only counted (their sessions then end by expiry).
	maxDropped = 10000
)

// router sends later packets on the ROUTER socket (ROUTER_MANDATORY) as
// [server-id, "", packet]. A packet is sent on the caller's goroutine,
// under mu, when nothing is waiting for its server and the socket takes
// it: handing each one to a goroutine cost a wake-up per packet, more than
// the send. A packet the socket refuses (an identity not connected yet,
// that server's full high-water mark) is queued for that server, and so is
// every later one to it until its queue is empty again, so a server gets
// its packets in the order they were given (seqs of a session, which
// callers take under the session lock, stay in order). Each server waits
// in its own queue: one gone or slow server never holds up packets to the
// others. run retries the queues; a server never reached is waited for
// unreachableFor, then its packets are dropped. Dropped packets go to
// onDrop (on a goroutine of their own, no lock held), which ends their sessions,
// and are logged at warn level, once per peer per dropLogEvery.
type router struct {
	log    zerolog.Logger
	onDrop func(to string, msg []byte)

	mu      sync.Mutex
	sock    *zmq.Socket // nil once stopped
	peers   map[string]*peer
	waiting []*peer // peers with queued packets
	queued  int     // packets queued over all peers
	dropped []routed
	ndrop   map[string]int // drops not logged yet, per peer
	wake    chan struct{}
	notFull *sync.Cond
}

// peer is one server identity as the router knows it.
type peer struct {
	name  string
	frame []byte   // the identity frame, made once
	q     [][]byte // packets waiting, oldest first
	first time.Time
	// known: the socket reached this identity once (or waited for it in
	// vain), so unreachable now means it left: drop at once. It is never
	// cleared: a restarted server with the same identity simply gets its
	// packets again.
	known   bool
	lastLog time.Time
}

// routed is a packet for the ROUTER: the server identity and the message.
type routed struct {
	to  string
	msg []byte
}

func newRouter(sock *zmq.Socket, log zerolog.Logger) *router {
	r := &router{log: log, sock: sock, wake: make(chan struct{}, 1), peers: map[string]*peer{}, ndrop: map[string]int{}}
	r.notFull = sync.NewCond(&r.mu)
	return r
}

// send sends msg to the server with identity to, or queues a copy of it
// behind earlier packets to that server (msg is not kept: callers encode
// into a reused buffer). It waits while the queues are full (the
// back-pressure of a stuck socket) and drops the packet once the router
// stopped.
func (r *router) send(to string, msg []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.sock != nil && r.queued >= routerQueueMax {
		r.notFull.Wait()
	}
	if r.sock == nil {
		return
	}
	p := r.peer(to)
	if len(p.q) == 0 {
		// Never wait here for a full high-water mark: the caller holds a
		// session lock; run does the waiting.
		err := r.sock.TrySend(p.frame, nil, msg)
		switch {
		case err == nil:
			p.known = true
			return
		case errors.Is(err, zmq.ErrUnreachable) && p.known:
			r.drop(p, msg, true)
			return
		case errors.Is(err, zmq.ErrUnreachable):
			p.first = time.Now()
		case !errors.Is(err, zmq.ErrTimeout):
			r.log.Warn().Err(err).Str("to", to).Msg("dropping packet to server")
			return
		}
		r.waiting = append(r.waiting, p)
	}
	p.q = append(p.q, append([]byte(nil), msg...))
	r.queued++
	r.poke()
}

func (r *router) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// peer is the state of server to (under mu).
func (r *router) peer(to string) *peer {
	p, ok := r.peers[to]
	if !ok {
		if len(r.peers) >= maxPeers {
			for k, v := range r.peers {
				if len(v.q) == 0 {
					delete(r.peers, k)
				}
			}
		}
		p = &peer{name: to, frame: []byte(to)}
		r.peers[to] = p
	}
	return p
}

// drop hands msg to onDrop (via run) and counts it for the log (under
// mu); copy when msg is the caller's buffer.
func (r *router) drop(p *peer, msg []byte, copyMsg bool) {
	r.ndrop[p.name]++
	if r.onDrop != nil && len(r.dropped) < maxDropped {
		if copyMsg {
			msg = append([]byte(nil), msg...)
		}
		r.dropped = append(r.dropped, routed{to: p.name, msg: msg})
	}
	r.poke()
}

// run retries queued packets, ends the sessions of dropped ones and logs
// the drops until ctx ends, then closes the socket.
func (r *router) run(ctx context.Context) {
	defer func() {
		r.mu.Lock()
		r.sock.Close()
		r.sock, r.waiting, r.peers, r.queued = nil, nil, nil, 0
		r.notFull.Broadcast()
		r.mu.Unlock()
	}()
	var logTimer <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-logTimer:
			logTimer = nil
		}
		for ctx.Err() == nil {
			again := r.retry()
			r.handleDrops()
			if !again {
				break
			}
			time.Sleep(unreachableRetry)
		}
		if r.logDrops(time.Now()) && logTimer == nil {
			logTimer = time.After(dropLogEvery)
		}
	}
}

// retry sends what the queues hold, each server's oldest first; true
// when some server is still waited for and should be tried again after
// a pause.
func (r *router) retry() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	keep := r.waiting[:0]
	for _, p := range r.waiting {
		if r.flushPeer(p) {
			keep = append(keep, p)
		}
	}
	clear(r.waiting[len(keep):])
	r.waiting = keep
	if len(keep) == 0 {
		r.waiting = nil // let the backing array go
	}
	return len(keep) > 0
}

// flushPeer sends p's queue (under mu); true while some of it must wait.
func (r *router) flushPeer(p *peer) bool {
	n := len(p.q)
	defer func() {
		if sent := n - len(p.q); sent > 0 {
			r.queued -= sent
			r.notFull.Broadcast()
		}
		if len(p.q) == 0 {
			p.q = nil
		}
	}()
	for len(p.q) > 0 {
		err := r.sock.TrySend(p.frame, nil, p.q[0])
		switch {
		case err == nil:
			p.known = true
		case errors.Is(err, zmq.ErrTimeout):
			return true
		case errors.Is(err, zmq.ErrUnreachable):
			if p.first.IsZero() {
				p.first = time.Now()
			}
			if !p.known && time.Since(p.first) < unreachableFor {
				return true
			}
			// Waited for in vain, or gone: everything queued for it goes.
			p.known = true
			for _, m := range p.q {
				r.drop(p, m, false)
			}
			clear(p.q)
			p.q = p.q[:0]
			p.first = time.Time{}
			return false
		default:
			r.log.Warn().Err(err).Str("to", p.name).Msg("dropping packet to server")
		}
		p.q[0] = nil
		p.q = p.q[1:]
		p.first = time.Time{}
	}
	return false
}

// reap releases the pipes of servers that left (see zmq.Socket.Reap); the
// sweep calls it once a second, and run after a drop.
func (r *router) reap() {
	r.mu.Lock()
	if r.sock != nil {
		r.sock.Reap()
	}
	r.mu.Unlock()
}

// handleDrops passes the dropped packets to onDrop, with no lock held,
// on a goroutine of their own.
func (r *router) handleDrops() {
	r.mu.Lock()
	list := r.dropped
	r.dropped = nil
	if len(list) > 0 && r.sock != nil {
		r.sock.Reap()
	}
	r.mu.Unlock()
	if len(list) == 0 {
		return
	}
	// Not on this goroutine: onDrop runs connection handlers, which may
	// send, and a send waiting for room in full queues would wait for this
	// very goroutine.
	go func() {
		for _, d := range list {
			r.onDrop(d.to, d.msg)
		}
	}()
}

// logDrops warns about packets dropped per peer, at most once per peer
// per dropLogEvery; true while some count waits for its interval.
func (r *router) logDrops(now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	pending := false
	for to, n := range r.ndrop {
		p := r.peers[to]
		if p != nil && now.Sub(p.lastLog) < dropLogEvery {
			pending = true
			continue
		}
		r.log.Warn().Str("to", to).Int("packets", n).Dur("interval", dropLogEvery).
			Msg("server unreachable (gone or never connected): dropped packets to it and ended their sessions")
		if p != nil {
			p.lastLog = now
		}
		delete(r.ndrop, to)
	}
	return pending
}
