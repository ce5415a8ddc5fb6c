// Package proxy is Pushpin's proxy process (pushpin-proxy): it serves the
// connection manager's zhttp sessions, routes each request to a backend
// through zurl (or the built-in test backend), relays plain responses with
// end-to-end credits and hands GRIP holds to the handler. GOROUTINES.md
// says which goroutine owns what.
package proxy

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/configs/routing"
	"github.com/pushpin-go/pushpin/proto/grip"
	"github.com/pushpin-go/pushpin/proto/zhttp/deferack"
	"github.com/pushpin-go/pushpin/proto/zmq"
)

// Zhttp timers (zhttp.md §9).
const (
	DefaultKeepAlive = 45 * time.Second
	DefaultExpiry    = 60 * time.Second
)

// routeSource is a routing.Watcher (file or --route lines).
type routeSource interface {
	Current() *routing.Table
	Reload() error
	Run(ctx context.Context) error
	Close() error
}

// Proxy is one pushpin-proxy instance.
type Proxy struct {
	cfg    *configs.Config
	log    zerolog.Logger
	id     string
	routes routeSource
	rw     *rewriter
	signer *grip.Signer // [proxy] sig_key; nil when unset

	routeSigners sync.Map // "iss\x00key" → *grip.Signer, for routes with sig_iss/sig_key

	sessions  *registry[*session] // (client from, id) → session
	zsessions *registry[*session] // outbound request id → session

	wsSessions *registry[*wsSession] // (client from, id) → WebSocket session
	wsCids     *registry[*wsSession] // connection id (cid) → WebSocket session
	wsMsgs     atomic.Uint64         // numbers multi-send messages (wsFrame.msg)
	wsZ        *registry[*wsSession] // backend zws stream / WOH request id → WebSocket session

	keepAlive, expiry, tick time.Duration
	settle                  time.Duration // wait before taking new sessions
	ackDelay                time.Duration // how long a bodiless request's ack may wait for the response (0: ack at once)
	wsGrace                 time.Duration // see wsReadingGrace

	// Set up by Run.
	ctx     context.Context
	cw, zw  *writer
	accept  *zmq.Locked
	acks    *deferack.Queue[string]
	wsctl   *wsControl  // nil without the ws-control sockets
	cmdSock *zmq.Socket // command ROUTER, owned by the command goroutine
	wg      sync.WaitGroup
}

// Option adjusts a Proxy before it runs.
type Option func(*Proxy)

// WithID sets the zhttp instance id (default pushpin-proxy_<pid>).
func WithID(id string) Option { return func(p *Proxy) { p.id = id } }

// WithTimers overrides the keep-alive interval and the session expiry
// (tests use short ones).
func WithTimers(keepAlive, expiry time.Duration) Option {
	return func(p *Proxy) { p.keepAlive, p.expiry = keepAlive, expiry }
}

// DefaultAckDelay is how long the ack of a request without a body waits
// for the response to make it unnecessary (see session.begin).
const DefaultAckDelay = 100 * time.Millisecond

// WithAckDelay sets how long the ack of a bodiless request may wait for
// the response; 0 acks at once, as Pushpin does.
func WithAckDelay(d time.Duration) Option { return func(p *Proxy) { p.ackDelay = d } }

// WithWSReadingGrace sets how recent a WebSocket client's credits must be
// for it to count as still reading, and so to fall behind further than the
// queue bound (default 1 s; 0 holds every client to the bound).
func WithWSReadingGrace(d time.Duration) Option { return func(p *Proxy) { p.wsGrace = d } }

// WithSettle sets how long Run waits after connecting before it takes new
// sessions (default 500 ms, see Run).
func WithSettle(d time.Duration) Option { return func(p *Proxy) { p.settle = d } }

// New validates cfg, loads the routes and prepares the proxy; no socket
// is opened before Run.
func New(cfg *configs.Config, log zerolog.Logger, opts ...Option) (*Proxy, error) {
	p := &Proxy{
		cfg: cfg, id: "pushpin-proxy_" + strconv.Itoa(os.Getpid()),
		sessions: newRegistry[*session](), zsessions: newRegistry[*session](),
		wsSessions: newRegistry[*wsSession](), wsCids: newRegistry[*wsSession](), wsZ: newRegistry[*wsSession](),
		keepAlive: DefaultKeepAlive, expiry: DefaultExpiry, settle: 500 * time.Millisecond, ackDelay: DefaultAckDelay,
		wsGrace: wsReadingGrace,
	}
	for _, o := range opts {
		o(p)
	}
	p.tick = min(time.Second, p.keepAlive/4)
	p.log = log.With().Str("component", "proxy").Logger()
	pc := &cfg.Proxy
	for _, c := range []struct {
		key   string
		specs []string
	}{
		{"condure_in_specs", pc.CondureInSpecs}, {"condure_in_stream_specs", pc.CondureInStreamSpecs},
		{"condure_out_specs", pc.CondureOutSpecs}, {"zurl_out_specs", pc.ZurlOutSpecs},
		{"zurl_out_stream_specs", pc.ZurlOutStreamSpecs}, {"zurl_in_specs", pc.ZurlInSpecs},
		{"handler_accept_spec", pc.HandlerAcceptSpec}, {"handler_retry_in_spec", pc.HandlerRetryInSpec},
	} {
		if len(c.specs) == 0 {
			return nil, fmt.Errorf("%w: [proxy] %s is not set", ErrConfig, c.key)
		}
	}
	rw := &rewriter{xfp: pc.SetXForwardedProtocol, acceptXFP: pc.AcceptXForwardedProtocol, acceptPushpinRoute: pc.AcceptPushpinRoute}
	var err error
	if rw.xff, err = parseXFF("x_forwarded_for", pc.XForwardedFor); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if rw.xffTrusted, err = parseXFF("x_forwarded_for_trusted", pc.XForwardedForTrusted); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if v, _ := cfg.Get("proxy", "upstream_key"); v != "" {
		if rw.upstream, err = grip.ParseKey(v, cfg.Dir); err != nil {
			return nil, fmt.Errorf("%w: [proxy] upstream_key: %w", ErrConfig, err)
		}
	}
	p.rw = rw
	if v, _ := cfg.Get("proxy", "sig_key"); v != "" {
		k, err := grip.ParseKey(v, cfg.Dir)
		if err != nil {
			return nil, fmt.Errorf("%w: [proxy] sig_key: %w", ErrConfig, err)
		}
		iss := pc.SigIss
		if iss == "" {
			iss = "pushpin"
		}
		if p.signer, err = grip.NewSigner(iss, k); err != nil {
			return nil, fmt.Errorf("%w: [proxy] sig_key: %w", ErrConfig, err)
		}
	}
	if cfg.Routes != nil {
		p.routes = routing.NewStatic(cfg.Routes, p.log)
	} else if p.routes, err = routing.NewWatcher(pc.RoutesFile, p.log); err != nil {
		return nil, fmt.Errorf("%w: routes: %w", ErrConfig, err)
	}
	p.warnNotActedOn()
	return p, nil
}

// ID returns the zhttp instance id.
func (p *Proxy) ID() string { return p.id }

// ReloadRoutes re-reads the routes file now, through the same reload as a
// change the file watcher sees; it is what SIGHUP does. The outcome is
// logged there. With --route lines there is no file and nothing changes.
func (p *Proxy) ReloadRoutes() error { return p.routes.Reload() }

// signerFor returns the Grip-Sig signer of a route: its own sig_iss/sig_key
// when both are set (built once, then cached), else the global one.
func (p *Proxy) signerFor(r *routing.Route) *grip.Signer {
	if r.SigIss == "" || r.SigKey == "" {
		return p.signer
	}
	k := r.SigIss + "\x00" + r.SigKey
	if v, ok := p.routeSigners.Load(k); ok {
		return v.(*grip.Signer)
	}
	key, err := grip.ParseKey(r.SigKey, p.cfg.Dir)
	if err != nil {
		p.log.Error().Err(err).Str("route", r.ID).Msg("route sig_key unusable, using [proxy] sig_key")
		return p.signer
	}
	s, err := grip.NewSigner(r.SigIss, key)
	if err != nil {
		p.log.Error().Err(err).Str("route", r.ID).Msg("route sig_key unusable, using [proxy] sig_key")
		return p.signer
	}
	v, _ := p.routeSigners.LoadOrStore(k, s)
	return v.(*grip.Signer)
}

// Run opens the sockets and serves until ctx is done.
func (p *Proxy) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p.ctx = ctx
	socks, err := p.openSockets()
	if err != nil {
		p.routes.Close()
		return err
	}
	p.cw = newWriter(ctx, p.id, p.log.With().Str("link", "condure").Logger())
	p.cw.pub = socks.condureOut
	p.zw = newWriter(ctx, p.id, p.log.With().Str("link", "zurl").Logger())
	p.zw.push, p.zw.router = socks.zurlOut, socks.zurlOutStream
	p.accept = zmq.NewLocked(socks.accept, func(_ [][]byte, err error) {
		p.log.Warn().Err(err).Msg("accept message dropped")
	})
	p.acks = deferack.New(p.ackDelay, func(key string) {
		if s := p.sessions.get(key); s != nil {
			s.handle(event{kind: evAck})
		}
	})
	if socks.wsCtlOut != nil {
		p.wsctl = &wsControl{px: p, ctx: ctx, log: p.log.With().Str("link", "ws-control").Logger(),
			out: zmq.NewLocked(socks.wsCtlOut, func(_ [][]byte, err error) {
				p.log.Warn().Err(err).Msg("ws-control message dropped")
			})}
	}
	p.cmdSock = socks.command
	p.log.Info().Str("id", p.id).Msg("started")
	goes := []func(){
		func() {
			// ZeroMQ SUB subscriptions reach the publisher asynchronously:
			// a request accepted in the first instant after connecting could
			// get its zurl reply dropped (slow joiner). The connection
			// manager queues first packets meanwhile.
			select {
			case <-time.After(p.settle):
			case <-ctx.Done():
			}
			zmq.RecvLoop(ctx, socks.condureIn, p.onCondureFirst, p.recvErr("condure-in"))
		},
		func() { zmq.RecvLoop(ctx, socks.condureInStream, p.onCondureStream, p.recvErr("condure-in-stream")) },
		func() { zmq.RecvLoop(ctx, socks.zurlIn, p.onZurl, p.recvErr("zurl-in")) },
		func() { zmq.RecvLoop(ctx, socks.retry, p.onRetry, p.recvErr("retry")) },
		func() { p.ticker(ctx) },
		func() {
			if socks.wsCtlIn != nil {
				zmq.RecvLoop(ctx, socks.wsCtlIn, p.wsctl.onMessage, p.recvErr("ws-control-in"))
			}
		},
		func() {
			if socks.command != nil {
				zmq.RecvLoop(ctx, socks.command, p.onCommand, p.recvErr("command"))
			}
		},
		func() {
			if err := p.routes.Run(ctx); err != nil && ctx.Err() == nil {
				p.log.Error().Err(err).Msg("routes watcher stopped")
			}
		},
	}
	for _, g := range goes {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			g()
		}()
	}
	<-ctx.Done()
	p.routes.Close()
	p.wg.Wait()
	// Nothing sends any more but a deferred ack already firing, which the
	// closed writer drops.
	p.acks.Stop()
	p.cw.close()
	p.zw.close()
	p.accept.Close()
	if p.wsctl != nil {
		p.wsctl.out.Close()
	}
	p.log.Info().Msg("stopped")
	return nil
}

func (p *Proxy) recvErr(name string) func(error) {
	return func(err error) { p.log.Warn().Err(err).Str("socket", name).Msg("receive error") }
}
