// Package connmgr is the connection manager (Pushpin's condure): it accepts
// client HTTP connections and carries each request to the proxy as a zhttp
// client session, byte-compatible with condure so Pushpin's proxy and
// handler work behind it. GOROUTINES.md says which goroutine owns what.
package connmgr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/pushpin-go/pushpin/proto/zhttp"
	"github.com/pushpin-go/pushpin/proto/zmq"
)

// Config is what condure's command line sets.
type Config struct {
	ID          string   // zhttp instance id (--id), default "condure"
	Listen      []string // host:port of plain HTTP listeners
	ZClient     string   // --zclient-stream base spec
	Connect     bool     // --zclient-connect: connect instead of bind
	BufferSize  int      // --buffer-size: initial credits and max request head
	MaxConn     int      // --stream-maxconn
	KeepAlive   time.Duration
	Expiry      time.Duration
	HeadTimeout time.Duration
}

// Specs expands a --zclient-stream base into the three endpoints condure
// uses: ipc ⇒ <base>-out, -out-stream, -in; tcp host:N ⇒ N, N+1, N+2.
func Specs(base string) (out, outStream, in string, err error) {
	tr, addr, err := zmq.SplitSpec(base)
	if err != nil {
		return "", "", "", err
	}
	if tr != "tcp" {
		return base + "-out", base + "-out-stream", base + "-in", nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", "", fmt.Errorf("--zclient-stream %q: %w", base, err)
	}
	var n int
	if _, err := fmt.Sscan(port, &n); err != nil {
		return "", "", "", fmt.Errorf("--zclient-stream %q: bad port", base)
	}
	f := func(p int) string { return fmt.Sprintf("tcp://%s", net.JoinHostPort(host, fmt.Sprint(p))) }
	return f(n), f(n + 1), f(n + 2), nil
}

// Server is one connection manager instance.
type Server struct {
	cfg    Config
	log    zerolog.Logger
	push   *zmq.Sender
	router *zmq.Sender
	nextID atomic.Uint64
	conns  atomic.Int64

	shards [64]shard
}

type shard struct {
	mu sync.Mutex
	m  map[string]*session
}

// New validates cfg; nothing opens before Run.
func New(cfg Config, log zerolog.Logger) (*Server, error) {
	if cfg.ID == "" {
		cfg.ID = "condure"
	}
	if cfg.ZClient == "" {
		return nil, errors.New("connmgr: --zclient-stream is required")
	}
	if len(cfg.Listen) == 0 {
		return nil, errors.New("connmgr: no --listen address")
	}
	if cfg.BufferSize <= 0 {
		cfg.BufferSize = 8192
	}
	if cfg.MaxConn <= 0 {
		cfg.MaxConn = 50000
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 45 * time.Second
	}
	if cfg.Expiry <= 0 {
		cfg.Expiry = 60 * time.Second
	}
	if cfg.HeadTimeout <= 0 {
		cfg.HeadTimeout = 30 * time.Second
	}
	s := &Server{cfg: cfg, log: log}
	for i := range s.shards {
		s.shards[i].m = map[string]*session{}
	}
	return s, nil
}

func (s *Server) shard(id string) *shard {
	var h uint32 = 2166136261
	for i := 0; i < len(id); i++ {
		h = (h ^ uint32(id[i])) * 16777619
	}
	return &s.shards[h%uint32(len(s.shards))]
}

func (s *Server) register(ss *session) {
	sh := s.shard(ss.id)
	sh.mu.Lock()
	sh.m[ss.id] = ss
	sh.mu.Unlock()
}

func (s *Server) unregister(ss *session) {
	sh := s.shard(ss.id)
	sh.mu.Lock()
	if sh.m[ss.id] == ss {
		delete(sh.m, ss.id)
	}
	sh.mu.Unlock()
}

func (s *Server) lookup(id string) *session {
	sh := s.shard(id)
	sh.mu.Lock()
	ss := sh.m[id]
	sh.mu.Unlock()
	return ss
}

// listen opens a TCP listener with SO_REUSEPORT, so several connection
// managers can share the client port.
func listen(addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return lc.Listen(context.Background(), "tcp", addr)
}

// Run binds the zhttp sockets and the listeners and serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	outSpec, streamSpec, inSpec, err := Specs(s.cfg.ZClient)
	if err != nil {
		return err
	}
	attach := func(sock *zmq.Socket, spec string) error {
		if s.cfg.Connect {
			return sock.Connect(spec)
		}
		return sock.Bind(spec)
	}
	push, err := zmq.New(zmq.Push, zmq.Options{SndHWM: 100, SendTimeout: 100})
	if err == nil {
		err = attach(push, outSpec)
	}
	if err != nil {
		return fmt.Errorf("zhttp out %s: %w", outSpec, err)
	}
	router, err := zmq.New(zmq.Router, zmq.Options{RouterMandatory: true, SndHWM: 101000})
	if err == nil {
		err = attach(router, streamSpec)
	}
	if err != nil {
		push.Close()
		return fmt.Errorf("zhttp out stream %s: %w", streamSpec, err)
	}
	sub, err := zmq.New(zmq.Sub, zmq.Options{Subscribe: []string{s.cfg.ID + " "}, RcvHWM: 101000})
	if err == nil {
		err = attach(sub, inSpec)
	}
	if err != nil {
		push.Close()
		router.Close()
		return fmt.Errorf("zhttp in %s: %w", inSpec, err)
	}
	s.log.Info().Str("out", outSpec).Str("out_stream", streamSpec).Str("in", inSpec).Msg("zhttp client sockets")
	var lns []net.Listener
	for _, addr := range s.cfg.Listen {
		ln, err := listen(addr)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			push.Close()
			router.Close()
			sub.Close()
			return fmt.Errorf("listen %s: %w", addr, err)
		}
		s.log.Info().Str("addr", addr).Msg("listening")
		lns = append(lns, ln)
	}
	onErr := func(msg [][]byte, err error) { s.log.Debug().Err(err).Msg("dropping packet to server") }
	s.push = zmq.NewSender(push, 10000, onErr)
	s.router = zmq.NewSender(router, 100000, onErr)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); s.push.Run(ctx) }()
	go func() { defer wg.Done(); s.router.Run(ctx) }()
	go func() {
		defer wg.Done()
		zmq.RecvLoop(ctx, sub, s.onPacket, func(err error) { s.log.Warn().Err(err).Msg("zhttp in") })
	}()
	srvs := make([]*http.Server, 0, len(lns))
	for _, ln := range lns {
		srv := &http.Server{
			Handler:           http.HandlerFunc(s.serve),
			ReadHeaderTimeout: s.cfg.HeadTimeout,
			MaxHeaderBytes:    s.cfg.BufferSize,
			ErrorLog:          nil,
		}
		srvs = append(srvs, srv)
		wg.Add(1)
		go func(ln net.Listener) {
			defer wg.Done()
			if err := srv.Serve(limitListener(ln, s)); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error().Err(err).Msg("serve")
			}
		}(ln)
	}
	s.log.Info().Str("id", s.cfg.ID).Msg("started")
	<-ctx.Done()
	for _, srv := range srvs {
		_ = srv.Close()
	}
	wg.Wait()
	s.log.Info().Msg("stopped")
	return nil
}

// onPacket dispatches a packet from a server ("<id> T…") to its session.
func (s *Server) onPacket(msg [][]byte) {
	_, m, err := zhttp.SplitPub(msg[0])
	if err != nil {
		s.log.Warn().Err(err).Msg("bad frame from server")
		return
	}
	p, err := zhttp.ParseMessage(m)
	if err != nil {
		s.log.Warn().Err(err).Msg("bad packet from server")
		return
	}
	if len(p.IDs) > 0 {
		for _, x := range p.IDs {
			q := *p
			q.IDs, q.ID, q.Seq, q.HasSeq = nil, x.ID, x.Seq, true
			if ss := s.lookup(x.ID); ss != nil {
				ss.deliver(&q)
			}
		}
		return
	}
	if ss := s.lookup(p.ID); ss != nil {
		ss.deliver(p)
	} else if p.Type != zhttp.Cancel && p.Type != zhttp.Error {
		s.log.Debug().Str("id", p.ID).Str("type", string(p.Type)).Msg("packet for unknown session")
	}
}

// sendLater sends a packet through the ROUTER to the session's current
// server identity.
func (s *Server) sendLater(to string, p *zhttp.Packet) {
	s.router.Send([]byte(to), nil, p.AppendMessage(nil))
}

// limitListener refuses connections over --stream-maxconn by closing them.
func limitListener(ln net.Listener, s *Server) net.Listener { return &maxConnListener{ln, s} }

type maxConnListener struct {
	net.Listener
	s *Server
}

func (l *maxConnListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.s.conns.Load() >= int64(l.s.cfg.MaxConn) {
			c.Close()
			continue
		}
		l.s.conns.Add(1)
		return &countedConn{Conn: c, s: l.s}, nil
	}
}

type countedConn struct {
	net.Conn
	s    *Server
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.s.conns.Add(-1) })
	return c.Conn.Close()
}
