// Package zurl is our replacement for Pushpin's zurl: the worker that makes
// the backend HTTP requests the proxy asks for over zhttp (stream mode),
// streaming bodies both ways within zhttp credits. GOROUTINES.md says which
// goroutine owns what; BEHAVIOUR.md lists where we differ from zurl 1.11.
package zurl

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/proto/zhttp"
	"github.com/pushpin-go/pushpin/proto/zhttp/deferack"
	"github.com/pushpin-go/pushpin/proto/zmq"
)

// Zhttp timers (zhttp.md §9).
const (
	keepAliveInterval = 45 * time.Second
	sessionExpiry     = 60 * time.Second
	sweepInterval     = 5 * time.Second
	// ackDelay is how long the keep-alive ack of a complete request waits
	// for the response head to make it unnecessary (session.ack).
	ackDelay = 100 * time.Millisecond
	// maxBatch bounds the ids of one list-form keep-alive, as Pushpin does.
	maxBatch = 128
	// maxReadBuf caps a response read buffer (and so a body packet) below
	// buffer_size: a streaming response keeps its buffer while it waits for
	// the backend, and 2,000 idle streams must not pin 400 MB.
	maxReadBuf = 64 << 10
)

// Server is one zurl instance: three sockets, a session table and the
// outbound HTTP transports.
type Server struct {
	cfg    configs.ZurlConfig
	log    zerolog.Logger
	id     string
	out    *zmq.Locked
	outCtx context.Context // a reply blocked by the PUB's HWM gives up when it ends
	sess   sessionTable
	slots  chan struct{}            // max_open_requests: one token per live session
	idle   chan *session            // hands a new session to a worker waiting for one (workers.go)
	quit   chan struct{}            // closed when Run returns: idle workers exit
	acks   *deferack.Queue[sessKey] // deferred keep-alive acks (session.ack)
	http   *clients
	bufs   sync.Pool // response read buffers of readBufSize bytes
	// readBufSize is the size of the pooled buffers: min(buffer_size, maxReadBuf).
	readBufSize int
	timers      timers
}

// New validates cfg and prepares a server; no socket opens before Run.
func New(cfg configs.ZurlConfig, log zerolog.Logger) (*Server, error) {
	for key, v := range map[string]string{"in_spec": cfg.InSpec, "in_stream_spec": cfg.InStreamSpec, "out_spec": cfg.OutSpec} {
		if v == "" {
			return nil, fmt.Errorf("%w: [General] %s is required", ErrConfig, key)
		}
		if _, _, err := zmq.SplitSpec(v); err != nil {
			return nil, fmt.Errorf("%w: [General] %s: %q: %v", ErrConfig, key, v, err)
		}
	}
	if cfg.DefPolicy != "" && cfg.DefPolicy != "allow" && cfg.DefPolicy != "deny" {
		return nil, fmt.Errorf("%w: [General] defpolicy: %q is not \"allow\" or \"deny\"", ErrConfig, cfg.DefPolicy)
	}
	if cfg.BufferSize <= 0 {
		cfg.BufferSize = 200000
	}
	if cfg.MaxOpenRequests <= 0 {
		cfg.MaxOpenRequests = 2000
	}
	id := cfg.InstanceID
	if id == "" {
		id = "{" + uuid() + "}" // zurl's random id keeps Qt's braces
	}
	s := &Server{cfg: cfg, log: log, id: id, slots: make(chan struct{}, cfg.MaxOpenRequests),
		idle: make(chan *session), quit: make(chan struct{}),
		timers: defaultTimers}
	s.sess.init()
	s.http = newClients(newPolicy(cfg.DefPolicy, cfg.Allow, cfg.Deny), cfg.MaxOpenRequests)
	size := min(cfg.BufferSize, maxReadBuf)
	s.readBufSize = size
	s.bufs.New = func() any { b := make([]byte, size); return &b }
	return s, nil
}

// Reload applies a re-read configuration (SIGHUP). Only the policy
// (defpolicy, allow, deny) changes at run time; the sockets, instance id
// and limits stay as started, and a change to them is logged and ignored.
func (s *Server) Reload(cfg configs.ZurlConfig) error {
	if cfg.DefPolicy != "" && cfg.DefPolicy != "allow" && cfg.DefPolicy != "deny" {
		return fmt.Errorf("%w: [General] defpolicy: %q is not \"allow\" or \"deny\"", ErrConfig, cfg.DefPolicy)
	}
	if cfg.InSpec != s.cfg.InSpec || cfg.InStreamSpec != s.cfg.InStreamSpec || cfg.OutSpec != s.cfg.OutSpec ||
		(cfg.InstanceID != "" && cfg.InstanceID != s.id) {
		s.log.Warn().Msg("reload: socket specs and instance_id need a restart; keeping the current ones")
	}
	s.http.policy.Store(newPolicy(cfg.DefPolicy, cfg.Allow, cfg.Deny))
	s.log.Info().Str("defpolicy", cfg.DefPolicy).Strs("allow", cfg.Allow).Strs("deny", cfg.Deny).Msg("reloaded")
	return nil
}

// ID returns the instance id (the ROUTER identity and `from` of replies).
func (s *Server) ID() string { return s.id }

// Open returns the number of live sessions.
func (s *Server) Open() int { return len(s.slots) }

func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Run binds the sockets and serves until ctx is done.
func (s *Server) Run(ctx context.Context) error {
	pull, err := zmq.New(zmq.Pull, zmq.Options{RcvHWM: s.cfg.InHWM})
	if err != nil {
		return fmt.Errorf("zurl in_spec: %w", err)
	}
	if err := pull.Bind(s.cfg.InSpec); err != nil {
		pull.Close()
		return fmt.Errorf("zurl in_spec %s: %w", s.cfg.InSpec, err)
	}
	in, err := zmq.New(zmq.Router, zmq.Options{Identity: s.id, RcvHWM: s.cfg.InHWM})
	if err == nil {
		if err = in.Bind(s.cfg.InStreamSpec); err != nil {
			in.Close()
		}
	}
	if err != nil {
		pull.Close()
		return fmt.Errorf("zurl in_stream_spec %s: %w", s.cfg.InStreamSpec, err)
	}
	// Replies are sent on the goroutine that makes them (no queue, no
	// hand-off); the 10,000 extra messages are the buffer the reply queue
	// used to add in front of the socket.
	pub, err := zmq.New(zmq.Pub, zmq.Options{SndHWM: max(s.cfg.OutHWM, 1000) + 10000, NoDrop: true})
	if err == nil {
		if err = pub.Bind(s.cfg.OutSpec); err != nil {
			pub.Close()
		}
	}
	if err != nil {
		pull.Close()
		in.Close()
		return fmt.Errorf("zurl out_spec %s: %w", s.cfg.OutSpec, err)
	}
	s.out = zmq.NewLocked(pub, func(_ [][]byte, err error) {
		s.log.Warn().Err(err).Msg("dropping reply")
	})
	s.log.Info().Str("id", s.id).Str("in", s.cfg.InSpec).Str("in_stream", s.cfg.InStreamSpec).
		Str("out", s.cfg.OutSpec).Msg("started")

	sendCtx, stopSend := context.WithCancel(context.Background())
	s.outCtx = sendCtx
	s.acks = deferack.New(s.timers.ack, func(k sessKey) {
		if ss := s.sess.get(k); ss != nil {
			ss.lateAck()
		}
	})
	var loops sync.WaitGroup
	loops.Add(3)
	go func() {
		defer loops.Done()
		zmq.RecvLoop(ctx, pull, func(msg [][]byte) { s.onFirst(ctx, msg[len(msg)-1]) }, s.recvErr)
	}()
	go func() {
		defer loops.Done()
		zmq.RecvLoop(ctx, in, func(msg [][]byte) { s.onLater(msg[len(msg)-1]) }, s.recvErr)
	}()
	go func() { defer loops.Done(); s.sweepLoop(ctx) }()
	<-ctx.Done()
	loops.Wait()
	// Sessions end before the PUB closes so that their goroutines, which
	// may be blocked queueing a reply, all return.
	s.sess.each(func(ss *session) { ss.abort() })
	s.waitIdle(5 * time.Second)
	s.acks.Stop()
	stopSend()
	s.out.Close()
	close(s.quit)
	s.http.close()
	s.log.Info().Msg("stopped")
	return nil
}

// waitIdle waits for the session goroutines to return.
func (s *Server) waitIdle(d time.Duration) {
	deadline := time.Now().Add(d)
	for len(s.slots) > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *Server) recvErr(err error) { s.log.Warn().Err(err).Msg("receive error") }

// reply sends a packet to a requester (PUB frame "<to> T…"), encoded into
// the socket's reused buffer.
func (s *Server) reply(to string, p *zhttp.Packet) {
	p.From = s.id
	s.out.SendEncoded(s.outCtx, func(dst []byte) []byte { return p.AppendPub(dst, to) })
}

// onFirst handles a request's first packet (PULL goroutine). Waiting for
// a free slot here is the max_open_requests limit: new requests stay queued
// in ZeroMQ (or go to another zurl sharing the endpoint) meanwhile.
func (s *Server) onFirst(ctx context.Context, msg []byte) {
	p, err := zhttp.ParseMessage(msg)
	if err != nil {
		s.log.Warn().Err(err).Msg("bad request packet")
		return
	}
	if p.From == "" || p.ID == "" || len(p.IDs) > 0 {
		s.log.Warn().Msg("request packet without from/id, dropped")
		return
	}
	fail := func(cond string) {
		s.reply(p.From, &zhttp.Packet{ID: p.ID, Seq: 0, HasSeq: true, Type: zhttp.Error, Condition: cond,
			UserData: p.UserData})
	}
	switch {
	case p.Type == zhttp.Cancel || p.Type == zhttp.Error:
		return
	case p.Type != zhttp.Data || (!p.Stream && !p.IsWebSocket()) || (p.HasSeq && p.Seq != 0) || p.URI == "":
		// Req mode is not served (zws has no `stream`); Pushpin's servers
		// answer so.
		s.log.Info().Str("id", p.ID).Str("uri", p.URI).Msg("unsupported request, bad-request")
		fail("bad-request")
		return
	}
	parse := parseTarget
	if p.IsWebSocket() {
		parse = parseWSTarget
	}
	u, err := parse(p.URI)
	if err != nil {
		s.log.Info().Str("id", p.ID).Str("uri", p.URI).Msg("bad uri, bad-request")
		fail("bad-request")
		return
	}
	if pol := s.http.policy.Load(); !p.IgnorePolicies && (!pol.allowed(u.Hostname()) ||
		(p.ConnectHost != "" && !pol.allowed(p.ConnectHost))) {
		s.log.Info().Str("id", p.ID).Str("uri", p.URI).Msg("denied by policy")
		fail("policy-violation")
		return
	}
	k := sessKey{p.From, p.ID}
	if s.sess.get(k) != nil {
		s.log.Warn().Str("id", p.ID).Msg("duplicate request id, dropped")
		return
	}
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return
	}
	ss := newSession(s, p, u)
	s.sess.put(k, ss)
	ss.ack()
	s.spawn(ss)
}

// onLater dispatches a ROUTER packet to its session(s) (ROUTER goroutine).
func (s *Server) onLater(msg []byte) {
	p, err := zhttp.ParseMessage(msg)
	if err != nil {
		s.log.Warn().Err(err).Msg("bad packet")
		return
	}
	if p.From == "" {
		s.log.Warn().Msg("packet without from, dropped")
		return
	}
	now := time.Now().UnixNano()
	if len(p.IDs) == 0 {
		s.dispatch(p, now)
		return
	}
	for _, x := range p.IDs {
		q := *p
		q.IDs, q.ID, q.Seq, q.HasSeq = nil, x.ID, x.Seq, true
		s.dispatch(&q, now)
	}
}

func (s *Server) dispatch(p *zhttp.Packet, now int64) {
	if ss := s.sess.get(sessKey{p.From, p.ID}); ss != nil {
		ss.deliver(p, now)
		return
	}
	// Body for a session we do not have: tell the requester to stop.
	// Credits and keep-alives racing our final packet are normal and
	// ignored.
	if p.Type == zhttp.Data {
		s.reply(p.From, &zhttp.Packet{ID: p.ID, HasSeq: true, Type: zhttp.Cancel})
	}
}

// done releases a finished session.
func (s *Server) done(ss *session) {
	if s.sess.remove(ss.key, ss) {
		<-s.slots
	}
}
