// Package handler is Pushpin's handler process (pushpin-handler): it takes
// over held HTTP sessions from the proxy, keeps the channel subscriptions
// and delivers what publishers send (HTTP control API, ZeroMQ PULL/SUB
// inputs, command socket) to the connection managers. GOROUTINES.md says
// which goroutine owns what.
package handler

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/handler/httpapi"
	"github.com/pushpin-go/pushpin/proto/handoff"
	"github.com/pushpin-go/pushpin/proto/publish"
	"github.com/pushpin-go/pushpin/proto/wscontrol"
	"github.com/pushpin-go/pushpin/proto/zhttp"
	"github.com/pushpin-go/pushpin/proto/zmq"
)

// ErrConfig is returned by New for unusable settings.
var ErrConfig = errors.New("handler: bad configuration")

// Handler is one pushpin-handler instance.
type Handler struct {
	cfg *configs.Config
	log zerolog.Logger
	id  string
	eng *engine
	// engReady is closed once Run has made eng: another goroutine (a
	// test) may read eng after it, never before.
	engReady chan struct{}

	refreshJobs chan *refreshJob // to the proxy command loop; nil without proxy_command_spec
}

// Option adjusts a Handler before it runs.
type Option func(*Handler)

// WithID sets the zhttp instance id (default pushpin-handler_<pid>).
func WithID(id string) Option { return func(h *Handler) { h.id = id } }

// New validates cfg; no socket opens before Run.
func New(cfg *configs.Config, log zerolog.Logger, opts ...Option) (*Handler, error) {
	h := &Handler{cfg: cfg, log: log, id: "pushpin-handler_" + strconv.Itoa(os.Getpid()), engReady: make(chan struct{})}
	for _, o := range opts {
		o(h)
	}
	hc := &cfg.Handler
	if len(hc.CondureOutSpecs) == 0 || len(hc.CondureInStreamSpecs) == 0 {
		return nil, fmt.Errorf("%w: [proxy] condure_out_specs and condure_in_stream_specs are required", ErrConfig)
	}
	if len(hc.ProxyAcceptSpec) == 0 {
		return nil, fmt.Errorf("%w: [handler] proxy_accept_spec is required", ErrConfig)
	}
	return h, nil
}

// ID returns the zhttp instance id.
func (h *Handler) ID() string { return h.id }

func (h *Handler) socket(t zmq.Type, o zmq.Options, bind bool, specs []string, what string) (*zmq.Socket, error) {
	s, err := zmq.New(t, o)
	if err != nil {
		return nil, err
	}
	for i, spec := range specs {
		if bind {
			if i > 0 {
				break // a bound socket uses the first spec, as Pushpin
			}
			err = s.Bind(spec)
		} else {
			err = s.Connect(spec)
		}
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("%s: %w", what, err)
		}
	}
	ev := h.log.Info().Str("socket", what).Strs("specs", specs).Bool("bind", bind)
	if o.MaxMsgSize > 0 {
		ev = ev.Int64("max_message_size", o.MaxMsgSize)
	}
	ev.Msg("socket ready")
	return s, nil
}

// Run opens the sockets and serves until ctx is done.
func (h *Handler) Run(ctx context.Context) error {
	hc := &h.cfg.Handler
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var socks []*zmq.Socket
	closeAll := func() {
		for _, s := range socks {
			s.Close()
		}
	}
	open := func(t zmq.Type, o zmq.Options, bind bool, specs []string, what string) (*zmq.Socket, error) {
		s, err := h.socket(t, o, bind, specs, what)
		if err == nil {
			socks = append(socks, s)
		}
		return s, err
	}
	// XPUB rather than PUB, to see the connection managers' subscriptions
	// arrive (waitConnMgrs).
	pub, err := open(zmq.XPub, zmq.Options{SndHWM: 101000, NoDrop: true, XPubVerbose: true}, false, hc.CondureOutSpecs, "zhttp out")
	if err != nil {
		return err
	}
	in, err := open(zmq.Router, zmq.Options{Identity: h.id, RcvHWM: 101000}, false, hc.CondureInStreamSpecs, "zhttp in stream")
	if err != nil {
		closeAll()
		return err
	}
	accept, err := open(zmq.Pull, zmq.Options{}, false, hc.ProxyAcceptSpec, "accept")
	if err != nil {
		closeAll()
		return err
	}
	// Publish inputs refuse a message part larger than an HTTP publish may
	// be: libzmq drops it before allocating it (a 100 MB item took the
	// handler to 521 MB, and it stayed there).
	maxMsg := int64(hc.PushInMaxBodySize)
	if maxMsg <= 0 {
		maxMsg = httpapi.DefaultMaxBodySize
	}
	var mode os.FileMode
	if hc.IPCFileMode >= 0 {
		mode = os.FileMode(hc.IPCFileMode)
	}
	var pull, sub, cmd *zmq.Socket
	if len(hc.PushInSpec) > 0 {
		if pull, err = open(zmq.Pull, zmq.Options{RcvHWM: 10000, MaxMsgSize: maxMsg, IPCFileMode: mode}, true, hc.PushInSpec, "in pull"); err != nil {
			closeAll()
			return err
		}
	}
	if len(hc.PushInSubSpecs) > 0 {
		if sub, err = open(zmq.Sub, zmq.Options{RcvHWM: 10000, SndHWM: subSndHWM, TCPKeepalive: hc.PushInSubConnect, MaxMsgSize: maxMsg, IPCFileMode: mode}, !hc.PushInSubConnect, hc.PushInSubSpecs, "in sub"); err != nil {
			closeAll()
			return err
		}
	}
	if len(hc.CommandSpec) > 0 {
		if cmd, err = open(zmq.Router, zmq.Options{MaxMsgSize: maxMsg, IPCFileMode: mode}, true, hc.CommandSpec, "command"); err != nil {
			closeAll()
			return err
		}
	}
	// WebSocket sessions: ws-control with the proxy (both sockets, or
	// neither, as Pushpin), and its command socket for refresh. Each
	// connects to the first spec only: the proxy binds one, and a PUSH or
	// DEALER connected to several would spread the items of one session
	// over proxies that do not know it.
	var wsIn, wsOut, proxyCmd *zmq.Socket
	if len(hc.ProxyWSControlInSpec) > 0 && len(hc.ProxyWSControlOutSpec) > 0 {
		if wsIn, err = open(zmq.Pull, zmq.Options{RcvHWM: 101000}, false, hc.ProxyWSControlInSpec[:1], "ws control in"); err != nil {
			closeAll()
			return err
		}
		if wsOut, err = open(zmq.Push, zmq.Options{SndHWM: 101000}, false, hc.ProxyWSControlOutSpec[:1], "ws control out"); err != nil {
			closeAll()
			return err
		}
	}
	if len(hc.ProxyCommandSpec) > 0 {
		if proxyCmd, err = open(zmq.Dealer, zmq.Options{}, false, hc.ProxyCommandSpec[:1], "proxy command"); err != nil {
			closeAll()
			return err
		}
	}
	var ln net.Listener
	if hc.PushInHTTPPort > 0 {
		addr := net.JoinHostPort(hc.PushInHTTPAddr, strconv.Itoa(hc.PushInHTTPPort))
		if ln, err = net.Listen("tcp", addr); err != nil {
			closeAll()
			return fmt.Errorf("http control server %s: %w", addr, err)
		}
		h.log.Info().Str("addr", addr).Msg("http control server")
	}

	// From here each socket belongs to the goroutine started for it.
	pubSender := zmq.NewSender(pub, 100000, func(_ [][]byte, err error) {
		h.log.Warn().Err(err).Msg("dropping packet to connection manager")
	})
	pubSender.Hold(h.waitConnMgrs)
	var subs *subChanges
	if sub != nil {
		subs = &subChanges{wake: sub.Wake}
	}
	h.eng = newEngine(h.id, h.log, func(f []byte) { pubSender.Send(f) }, subs, h.cfg.Handler.ConnectionSubscriptionMax)
	h.eng.maxQueue = int64(hc.StreamMaxQueueSize)
	close(h.engReady)
	var wg sync.WaitGroup
	goRun := func(fn func()) {
		wg.Add(1)
		go func() { defer wg.Done(); fn() }()
	}
	if wsOut != nil {
		h.startWSControl(ctx, wsIn, wsOut, goRun)
	}
	if proxyCmd != nil {
		h.refreshJobs = make(chan *refreshJob, 256)
		goRun(func() { h.proxyCommandLoop(ctx, proxyCmd, h.refreshJobs) })
	}
	goRun(func() { pubSender.Run(ctx) })
	goRun(h.eng.run)
	goRun(func() {
		zmq.RecvLoop(ctx, in, func(msg [][]byte) {
			p, err := zhttp.ParseMessage(msg[len(msg)-1])
			if err != nil {
				h.log.Warn().Err(err).Msg("bad packet from connection manager")
				return
			}
			h.eng.post(func() { h.eng.onPacket(p) })
		}, h.recvErr("zhttp in stream"))
	})
	goRun(func() {
		zmq.RecvLoop(ctx, accept, func(msg [][]byte) {
			a, err := handoff.ParseAccept(msg[len(msg)-1])
			if err != nil {
				h.log.Warn().Err(err).Msg("bad accept message from proxy")
				return
			}
			h.eng.post(func() { h.eng.accept(a) })
		}, h.recvErr("accept"))
	})
	if pull != nil {
		goRun(func() {
			zmq.RecvLoop(ctx, pull, func(msg [][]byte) {
				it, err := publish.ParseZMQMessage(msg[0])
				if err != nil {
					h.log.Warn().Err(err).Msg("received message with invalid format (in pull)")
					return
				}
				h.publish([]publish.Item{it})
			}, h.recvErr("in pull"))
		})
	}
	if sub != nil {
		goRun(func() { h.subLoop(ctx, sub, subs) })
	}
	if cmd != nil {
		replies := &cmdReplies{wake: cmd.Wake}
		goRun(func() { h.commandLoop(ctx, cmd, replies) })
	}
	var srv *http.Server
	if ln != nil {
		api := &httpapi.Server{Publish: h.publish, Log: h.log,
			MaxHeadersSize: hc.PushInMaxHeadersSize, MaxBodySize: hc.PushInMaxBodySize}
		srv = api.HTTPServer("")
		goRun(func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				h.log.Error().Err(err).Msg("http control server")
			}
		})
	}
	warnUnused(h.log, hc)
	h.log.Info().Str("id", h.id).Msg("started")
	<-ctx.Done()
	if srv != nil {
		_ = srv.Close()
	}
	h.eng.stop()
	wg.Wait()
	h.log.Info().Msg("stopped")
	return nil
}

// subscribeWait bounds how long the handler waits at start-up for the
// connection managers to subscribe to it.
const subscribeWait = 5 * time.Second

// waitConnMgrs holds what the handler sends until every connection
// manager (one per condure_out_specs entry) has subscribed to the zhttp
// out socket: a PUB drops what it sends to a subscriber whose subscription
// has not reached it yet, and a handler that starts (or restarts) under
// load sends at once, to take over the sessions the proxy queued for it;
// those sessions would hang. Meanwhile the packets wait in the sender's
// queue, in order. A connection manager not up within subscribeWait is
// not waited for (it gets what is sent once it has subscribed).
func (h *Handler) waitConnMgrs(ctx context.Context, pub *zmq.Socket) {
	want := len(h.cfg.Handler.CondureOutSpecs)
	start := time.Now()
	got := zmq.WaitSubscribed(ctx, pub, want, subscribeWait)
	ev := h.log.Debug()
	if got < want && zmq.SubscriptionsVisible {
		ev = h.log.Warn()
	}
	ev.Int("subscribed", got).Int("connection_managers", want).Dur("waited", time.Since(start)).
		Msg("connection managers subscribed to zhttp out")
}

func (h *Handler) recvErr(what string) func(error) {
	return func(err error) { h.log.Warn().Err(err).Str("socket", what).Msg("receive error") }
}

// publish hands validated items to the engine, in order.
func (h *Handler) publish(items []publish.Item) {
	h.eng.post(func() {
		for i := range items {
			h.eng.publish(&items[i])
		}
	})
}

// subSndHWM bounds the SUB input's outgoing queue, which carries only
// subscription changes to the publishers. libzmq drops a change that finds
// it full (1,000 by default), and a publisher never learns of it: a mass
// (un)subscribe lost changes before this was raised.
const subSndHWM = 1 << 20

// startWSControl starts the goroutines of the ws-control sockets: the PUSH
// to the proxy is a Sender (the engine sends on it directly when it can,
// else queues), the PULL from it a receive loop posting to the engine.
func (h *Handler) startWSControl(ctx context.Context, in, out *zmq.Socket, goRun func(func())) {
	drops := h.log.Sample(&zerolog.BurstSampler{Burst: 1, Period: time.Second})
	sender := zmq.NewSender(out, wsOutQueue, func(_ [][]byte, err error) {
		drops.Warn().Err(err).Msg("dropping ws-control packet to proxy")
	})
	// A full queue drops rather than blocks the engine: the proxy has
	// taken none of the last wsOutQueue packets on top of the socket's
	// own 101,000, so it is gone (its sessions with it) or wedged, and the
	// HTTP holds must not stall behind it.
	h.eng.wsOut = func(f []byte) {
		if !sender.TrySend(f) {
			drops.Warn().Msg("ws-control queue to proxy full, dropping packet")
		}
	}
	goRun(func() { sender.Run(ctx) })
	goRun(func() {
		zmq.RecvLoop(ctx, in, func(msg [][]byte) {
			if len(msg) != 1 {
				h.log.Warn().Int("frames", len(msg)).Msg("IN wscontrol: message must have 1 frame, skipped")
				return
			}
			items, err := wscontrol.Parse(msg[0])
			if err != nil {
				h.log.Warn().Err(err).Msg("IN wscontrol: invalid packet, skipped")
				return
			}
			h.eng.post(func() { h.eng.onWSControl(items) })
		}, h.recvErr("ws control in"))
	})
}

// wsOutQueue bounds the ws-control packets waiting for the proxy.
const wsOutQueue = 10000
