// Package connmgr is the connection manager (Pushpin's condure): it accepts
// client HTTP/1.x connections and carries each request to the proxy as a
// zhttp client session (a WebSocket as a zws session: ws.go), wire-compatible with condure so that Pushpin's
// proxy and handler (or ours) work behind it. It is built for many mostly
// idle connections and large fan-outs: an idle or held connection owns no
// goroutine and no buffer (event-driven on a connmgr-owned epoll set, see
// conn.go and netpoll.go), and a data packet for many sessions (list-form
// id, ext.multi-data) is framed once and written by a few workers
// (dispatch.go). GOROUTINES.md says which goroutine owns what.
package connmgr

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/connmgr/internal/http1"
	"github.com/pushpin-go/pushpin/proto/zmq"
)

// Server is one connection manager instance.
type Server struct {
	cfg Config
	log zerolog.Logger
	lim http1.Limits

	push    *zmq.Sender
	router  *router
	done    chan struct{} // closed when Run is stopping
	workers []chan job
	// busy counts each worker's jobs queued or running; dispatch (the only
	// producer) runs a single-session packet itself when its worker has
	// none, as order then cannot change.
	busy  []atomic.Int64
	loops []*ioLoop

	slots   slotTable         // connections and their sessions
	servers map[string]string // interned server identities (dispatch's)
	split   []uint8           // dispatch's scratch: the worker of each id of a list packet
	nconns  atomic.Int64
	connSeq atomic.Uint64
	idSeq   atomic.Uint64
	bufs    sync.Pool // *[]byte of cfg.BufferSize
	small   sync.Pool // *[]byte of smallOut
	enc     sync.Pool // *[]byte: ROUTER packets are encoded in these
	connWG  sync.WaitGroup

	ready chan struct{} // closed once sockets and listeners are open
	addrs []net.Addr
}

// New validates cfg; nothing opens before Run.
func New(cfg Config, log zerolog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.SessionPrefix == "" {
		cfg.SessionPrefix = strconv.Itoa(os.Getpid())
	}
	s := &Server{cfg: cfg, log: log, done: make(chan struct{}), ready: make(chan struct{}), servers: map[string]string{},
		lim: http1.Limits{MaxHead: cfg.BufferSize, MaxHeaders: 64}}
	size := cfg.BufferSize
	s.bufs.New = func() any { b := make([]byte, size); return &b }
	s.small.New = func() any { b := make([]byte, smallOut); return &b }
	s.enc.New = func() any { b := make([]byte, 0, 512); return &b }
	n := min(max(runtime.GOMAXPROCS(0), 1), maxWorkers)
	for range n {
		s.workers = append(s.workers, make(chan job, 4096))
	}
	s.busy = make([]atomic.Int64, n)
	return s, nil
}

// Ready is closed once Run has opened its sockets and listeners.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addrs are the listeners' addresses (valid after Ready).
func (s *Server) Addrs() []net.Addr { return s.addrs }

// register makes ss its connection's current session, the one its id
// finds.
func (s *Server) register(ss *session) { ss.sl.ss.Store(ss) }

func (s *Server) unregister(ss *session) { ss.sl.ss.CompareAndSwap(ss, nil) }

// lookup is the session a server packet's id names, if it is still open.
func (s *Server) lookup(id string) *session {
	i, n, ok := parseSessionID(s.cfg.SessionPrefix, id)
	if !ok {
		return nil
	}
	sl := s.slots.at(i)
	if sl == nil {
		return nil
	}
	if ss := sl.ss.Load(); ss != nil && ss.n == n {
		return ss
	}
	return nil
}

func (s *Server) attach(sock *zmq.Socket, spec string) error {
	if s.cfg.Connect {
		return sock.Connect(spec)
	}
	return sock.Bind(spec)
}

// openSockets creates the PUSH, ROUTER and SUB sockets on every
// --zclient-stream base.
func (s *Server) openSockets() (push, router, sub *zmq.Socket, err error) {
	mode := os.FileMode(s.cfg.IPCFileMode)
	if push, err = zmq.New(zmq.Push, zmq.Options{SndHWM: 100, IPCFileMode: mode}); err != nil {
		return nil, nil, nil, err
	}
	if router, err = zmq.New(zmq.Router, zmq.Options{RouterMandatory: true, SndHWM: 101000, IPCFileMode: mode}); err != nil {
		push.Close()
		return nil, nil, nil, err
	}
	if sub, err = zmq.New(zmq.Sub, zmq.Options{Subscribe: []string{s.cfg.ID + " "}, RcvHWM: 101000, IPCFileMode: mode}); err != nil {
		push.Close()
		router.Close()
		return nil, nil, nil, err
	}
	for _, base := range s.cfg.ZClient {
		out, stream, in, _ := Specs(base)
		for _, x := range []struct {
			sock *zmq.Socket
			spec string
		}{{push, out}, {router, stream}, {sub, in}} {
			if err = s.attach(x.sock, x.spec); err != nil {
				push.Close()
				router.Close()
				sub.Close()
				return nil, nil, nil, fmt.Errorf("zhttp socket %s: %w", x.spec, err)
			}
		}
		s.log.Info().Str("out", out).Str("out_stream", stream).Str("in", in).Bool("connect", s.cfg.Connect).Msg("zhttp client sockets")
	}
	return push, router, sub, nil
}

// Run opens the sockets and listeners and serves until ctx ends, then
// closes every client connection and stops its goroutines.
func (s *Server) Run(ctx context.Context) error {
	var lns []*acceptor
	closeAll := func() {
		for _, a := range lns {
			a.close()
		}
	}
	for _, l := range s.cfg.Listen {
		if l.TLS {
			s.log.Error().Str("listen", l.Addr).Msg("TLS listeners are not supported yet; skipped")
			continue
		}
		ln, err := listen(l)
		if err != nil {
			closeAll()
			return fmt.Errorf("listen %s: %w", l.Addr, err)
		}
		a, err := newAcceptor(ln)
		if err != nil {
			ln.Close()
			closeAll()
			return fmt.Errorf("listen %s: %w", l.Addr, err)
		}
		s.log.Info().Str("addr", ln.Addr().String()).Msg("listening")
		lns = append(lns, a)
		s.addrs = append(s.addrs, ln.Addr())
	}
	if len(lns) == 0 {
		return ErrNoListener
	}
	for range len(s.workers) {
		l, err := newIOLoop(s)
		if err != nil {
			closeAll()
			s.closeLoops()
			return err
		}
		s.loops = append(s.loops, l)
	}
	push, router, sub, err := s.openSockets()
	if err != nil {
		closeAll()
		s.closeLoops()
		return err
	}
	s.push = zmq.NewSender(push, 10000, func(_ [][]byte, err error) {
		s.log.Debug().Err(err).Msg("dropping first packet")
	})
	var wg, loopWG, acceptWG sync.WaitGroup
	run := func(wg *sync.WaitGroup, f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	zctx, zcancel := context.WithCancel(context.Background())
	run(&wg, func() { s.push.Run(zctx) })
	s.router = newRouter(router, s.log)
	s.router.onDrop = s.packetDropped
	run(&wg, func() { s.router.run(zctx) })
	for w := range s.workers {
		run(&wg, func() { s.worker(w) })
	}
	run(&wg, func() {
		zmq.RecvLoop(zctx, sub, s.dispatch, func(err error) { s.log.Warn().Err(err).Msg("zhttp in") })
		for _, ch := range s.workers {
			close(ch)
		}
	})
	run(&wg, func() { s.sweepLoop(zctx) })
	for _, l := range s.loops {
		run(&loopWG, l.run)
	}
	for _, a := range lns {
		run(&acceptWG, func() { s.acceptLoop(a) })
	}
	close(s.ready)
	s.log.Info().Str("id", s.cfg.ID).Int("workers", len(s.workers)).Msg("started")
	<-ctx.Done()
	closeAll()
	acceptWG.Wait()
	close(s.done)
	for _, c := range s.allConns() {
		c.post(event{kind: evShutdown}, nil)
	}
	s.connWG.Wait()
	for _, l := range s.loops {
		l.stop()
	}
	loopWG.Wait()
	s.closeLoops()
	zcancel()
	wg.Wait()
	for _, l := range s.cfg.Listen {
		if l.Local {
			os.Remove(l.Addr)
		}
	}
	s.log.Info().Msg("stopped")
	return nil
}

func (s *Server) closeLoops() {
	for _, l := range s.loops {
		l.close()
	}
	s.loops = nil
}

// addConn gives c its slot; false when the table is full.
func (s *Server) addConn(c *conn) bool {
	i, ok := s.slots.alloc(c)
	if !ok {
		return false
	}
	c.slotIdx, c.sl = i, s.slots.at(i)
	s.nconns.Add(1)
	s.connWG.Add(1)
	return true
}

// epollKey is c's epoll data: its slot (plus one, so no key is wakeKey)
// and the low half of its serial, so an event left over from a closed
// connection does not reach the one that took its slot.
func (c *conn) epollKey() uint64 { return uint64(c.slotIdx+1)<<32 | uint64(uint32(c.serial)) }

// connByKey is the connection an epoll event's data names, if still open.
func (s *Server) connByKey(key uint64) *conn {
	sl := s.slots.at(uint32(key>>32) - 1)
	if sl == nil {
		return nil
	}
	if c := sl.c.Load(); c != nil && uint32(c.serial) == uint32(key) {
		return c
	}
	return nil
}

// allConns is a snapshot of the open connections (events are posted
// outside the walk: a handler may close the connection).
func (s *Server) allConns() []*conn {
	var out []*conn
	s.slots.each(func(_ uint32, _ *slot, c *conn) { out = append(out, c) })
	return out
}

func (s *Server) forgetConn(c *conn) {
	s.slots.release(c.slotIdx, c)
	s.nconns.Add(-1)
	s.connWG.Done()
}
