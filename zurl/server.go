// Package zurl is our replacement for Pushpin's zurl: the worker that makes
// the backend HTTP requests the proxy asks for over zhttp (stream mode),
// streaming bodies both ways within zhttp credits. GOROUTINES.md says which
// goroutine owns what.
package zurl

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/proto/zhttp"
	"github.com/pushpin-go/pushpin/proto/zmq"
)

// Zhttp timers (zhttp.md §9).
const (
	keepAliveInterval = 45 * time.Second
	sessionExpiry     = 60 * time.Second
)

// Server is one zurl instance.
type Server struct {
	cfg  configs.ZurlConfig
	log  zerolog.Logger
	id   string
	out  *zmq.Sender
	mu   sync.Mutex
	sess map[string]*session // requester "from\x00id" → session
	open int

	transports sync.Map // transportKey → *http.Transport
}

// New prepares a server; no socket opens before Run.
func New(cfg configs.ZurlConfig, log zerolog.Logger) (*Server, error) {
	if cfg.InSpec == "" || cfg.InStreamSpec == "" || cfg.OutSpec == "" {
		return nil, errors.New("zurl: in_spec, in_stream_spec and out_spec are required")
	}
	if cfg.BufferSize <= 0 {
		cfg.BufferSize = 200000
	}
	if cfg.MaxOpenRequests <= 0 {
		cfg.MaxOpenRequests = 2000
	}
	id := cfg.InstanceID
	if id == "" {
		id = "{" + uuid() + "}"
	}
	return &Server{cfg: cfg, log: log, id: id, sess: map[string]*session{}}, nil
}

// ID returns the instance id (the ROUTER identity and `from` of replies).
func (s *Server) ID() string { return s.id }

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
		return err
	}
	if err := pull.Bind(s.cfg.InSpec); err != nil {
		pull.Close()
		return err
	}
	in, err := zmq.New(zmq.Router, zmq.Options{Identity: s.id, RcvHWM: s.cfg.InHWM})
	if err == nil {
		err = in.Bind(s.cfg.InStreamSpec)
	}
	if err != nil {
		pull.Close()
		in.Close()
		return err
	}
	pub, err := zmq.New(zmq.Pub, zmq.Options{SndHWM: max(s.cfg.OutHWM, 1000), NoDrop: true})
	if err == nil {
		err = pub.Bind(s.cfg.OutSpec)
	}
	if err != nil {
		pull.Close()
		in.Close()
		pub.Close()
		return err
	}
	s.out = zmq.NewSender(pub, 10000, func(_ [][]byte, err error) {
		s.log.Warn().Err(err).Msg("dropping reply")
	})
	s.log.Info().Str("id", s.id).Str("in", s.cfg.InSpec).Str("in_stream", s.cfg.InStreamSpec).Str("out", s.cfg.OutSpec).Msg("started")
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); s.out.Run(ctx) }()
	go func() {
		defer wg.Done()
		zmq.RecvLoop(ctx, pull, func(msg [][]byte) { s.onFirst(ctx, msg[0]) }, s.recvErr)
	}()
	go func() {
		defer wg.Done()
		zmq.RecvLoop(ctx, in, func(msg [][]byte) { s.onLater(msg[len(msg)-1]) }, s.recvErr)
	}()
	<-ctx.Done()
	s.mu.Lock()
	for _, ss := range s.sess {
		ss.cancel()
	}
	s.mu.Unlock()
	wg.Wait()
	s.log.Info().Msg("stopped")
	return nil
}

func (s *Server) recvErr(err error) { s.log.Warn().Err(err).Msg("receive error") }

// reply sends a packet to the requester (PUB frame "<from> T…").
func (s *Server) reply(to string, p *zhttp.Packet) {
	p.From = s.id
	s.out.Send(p.AppendPub(nil, to))
}

func (s *Server) onFirst(ctx context.Context, msg []byte) {
	p, err := zhttp.ParseMessage(msg)
	if err != nil {
		s.log.Warn().Err(err).Msg("bad request packet")
		return
	}
	if p.From == "" || p.ID == "" {
		s.log.Warn().Msg("request packet without from/id, dropped")
		return
	}
	fail := func(cond string) {
		s.reply(p.From, &zhttp.Packet{ID: p.ID, Seq: 0, HasSeq: true, Type: zhttp.Error, Condition: cond})
	}
	if p.Type != zhttp.Data || !p.Stream || (p.HasSeq && p.Seq != 0) || p.URI == "" {
		fail("bad-request")
		return
	}
	if p.IsWebSocket() {
		fail("bad-request") // zws through zurl comes with the WebSocket work
		return
	}
	host := uriHost(p.URI)
	if !p.IgnorePolicies && !s.allowed(host) {
		s.log.Info().Str("uri", p.URI).Msg("denied by policy")
		fail("policy-violation")
		return
	}
	key := p.From + "\x00" + p.ID
	s.mu.Lock()
	if s.open >= s.cfg.MaxOpenRequests {
		s.mu.Unlock()
		fail("undefined-condition")
		return
	}
	if _, dup := s.sess[key]; dup {
		s.mu.Unlock()
		return
	}
	ss := newSession(s, p)
	s.sess[key] = ss
	s.open++
	s.mu.Unlock()
	go ss.run(ctx)
}

func (s *Server) onLater(msg []byte) {
	p, err := zhttp.ParseMessage(msg)
	if err != nil {
		s.log.Warn().Err(err).Msg("bad packet")
		return
	}
	deliver := func(q *zhttp.Packet) {
		s.mu.Lock()
		ss := s.sess[q.From+"\x00"+q.ID]
		s.mu.Unlock()
		if ss != nil {
			ss.deliver(q)
		}
	}
	if len(p.IDs) > 0 {
		for _, x := range p.IDs {
			q := *p
			q.IDs, q.ID, q.Seq, q.HasSeq = nil, x.ID, x.Seq, true
			deliver(&q)
		}
		return
	}
	deliver(p)
}

func (s *Server) done(ss *session) {
	s.mu.Lock()
	if s.sess[ss.key] == ss {
		delete(s.sess, ss.key)
		s.open--
	}
	s.mu.Unlock()
}

// allowed applies defpolicy/allow/deny to a target host.
func (s *Server) allowed(host string) bool {
	match := func(list []string) bool {
		for _, pat := range list {
			if ok, _ := path.Match(strings.ToLower(pat), strings.ToLower(host)); ok {
				return true
			}
		}
		return false
	}
	if strings.EqualFold(s.cfg.DefPolicy, "deny") {
		return match(s.cfg.Allow) && !match(s.cfg.Deny)
	}
	return !match(s.cfg.Deny) || match(s.cfg.Allow)
}

type transportKey struct {
	insecure bool
	sni      string
}

// transport returns the shared transport for a TLS setting; connections
// are pooled per dial address inside it.
func (s *Server) transport(insecure bool, sni string) *http.Transport {
	k := transportKey{insecure, sni}
	if t, ok := s.transports.Load(k); ok {
		return t.(*http.Transport)
	}
	t := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 100,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true, // bodies pass through as the backend encoded them
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: insecure, ServerName: sni},
	}
	actual, _ := s.transports.LoadOrStore(k, t)
	return actual.(*http.Transport)
}

func uriHost(uri string) string {
	rest := uri
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if h, _, err := net.SplitHostPort(rest); err == nil {
		return strings.Trim(h, "[]")
	}
	return strings.Trim(rest, "[]")
}
