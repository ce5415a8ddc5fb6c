package handler

// The engine: one goroutine that owns every held session and the channel
// index. Its work is split by concern: intake.go (sessions taken over from
// the proxy, packets from the connection manager, responses and ends),
// fanout.go (publishes, shared packets, channel subscriptions) and
// keepalive.go (zhttp and Grip keep-alives, expiry).

import (
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// engine owns every held session and the channel index. It runs in one
// goroutine (run); other goroutines hand it work as closures through ev, so
// no session state is ever shared or locked. Packets are encoded here, with
// their seq, and queued to the PUB sender in order.
type engine struct {
	id       string
	log      zerolog.Logger
	send     func(frame []byte) // queue one PUB frame to the connection manager
	subs     *subChanges        // nil when there is no SUB input
	maxChans int

	keepAliveEvery, expiry time.Duration

	ev       chan func()
	done     chan struct{} // closed by stop: run returns, post stops waiting
	sessions map[sessionKey]*session
	wheel    wheel                   // every session of sessions, by when maintain must next look at it
	batches  map[string]*senderBatch // publish scratch: shared-packet ids per connection manager
	inBatch  []*senderBatch          // the batches the current publish added to
	hub      map[string]map[*session]struct{}

	maxQueue int64  // stream_max_queue_size; 0: DefaultStreamQueueSize
	scratch  []byte // flush: queued chunks joined into one packet body
	backlog  backlogStats

	// WebSocket sessions (wssession.go, wscontrol.go, wsfanout.go).
	wsOut    func(frame []byte) // queue one ws-control packet to the proxy; nil: no ws-control sockets
	ws       map[string]*wsSession
	wsHub    map[string]*wsChan
	wsRing   wsRing
	interned map[string]string
	wsEnc    wsEncoder // publish scratch
}

func newEngine(id string, log zerolog.Logger, send func([]byte), subs *subChanges, maxChans int) *engine {
	return &engine{
		id: id, log: log, send: send, subs: subs, maxChans: maxChans,
		keepAliveEvery: 45 * time.Second, expiry: 60 * time.Second,
		wheel:   newWheel(time.Now()),
		batches: map[string]*senderBatch{},
		ev:      make(chan func(), 4096), done: make(chan struct{}), sessions: map[sessionKey]*session{}, hub: map[string]map[*session]struct{}{},
		ws: map[string]*wsSession{}, wsHub: map[string]*wsChan{}, wsRing: wsRing{epoch: time.Now()},
		interned: map[string]string{},
	}
}

// post runs fn on the engine goroutine. It waits while the engine's queue
// is full (back-pressure on the inputs), and drops fn once the engine has
// stopped, so an input never hangs the shutdown.
func (e *engine) post(fn func()) {
	select {
	case e.ev <- fn:
	case <-e.done:
	}
}

// stop makes run return; later posts are dropped. Call it once.
func (e *engine) stop() { close(e.done) }

// run processes events until stop.
func (e *engine) run() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-e.done:
			return
		case fn := <-e.ev:
			fn()
		case now := <-tick.C:
			e.maintain(now)
			e.wsRing.advance(e.wsRing.sec(now), e.wsLook)
			e.reportBacklog(now)
		}
	}
}

func (e *engine) emit(s *session, p *zhttp.Packet) {
	e.send(p.AppendPub(nil, s.sender))
}

// counts returns (sessions, channels), for tests and logs.
func (e *engine) counts() (int, int) { return len(e.sessions), len(e.hub) }
