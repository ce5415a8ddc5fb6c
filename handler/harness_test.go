package handler

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/internal/testwait"
	"github.com/pushpin-go/pushpin/proto/handoff"
	"github.com/pushpin-go/pushpin/proto/zhttp"
	"github.com/pushpin-go/pushpin/proto/zmq"
)

// handlerCfg is a handler configuration on ipc:// paths under dir; the
// test binds the connection manager's and the proxy's ends.
func handlerCfg(dir string) *configs.Config {
	ipc := func(name string) []string { return []string{"ipc://" + filepath.Join(dir, name)} }
	cfg := &configs.Config{}
	h := &cfg.Handler
	h.CondureOutSpecs = ipc("cm-in")
	h.CondureInStreamSpecs = ipc("cm-out-stream")
	h.ProxyAcceptSpec = ipc("accept")
	h.ConnectionSubscriptionMax = 20
	return cfg
}

// running is an in-process handler started by startHandler.
type running struct {
	h       *Handler
	stop    context.CancelFunc
	stopped chan struct{}
	waited  bool // shutdown ran (and reported a handler that did not stop)
}

// startHandler runs a handler on cfg until the test ends (or shutdown is
// called). A handler that does not stop fails the test instead of hanging it.
func startHandler(t *testing.T, cfg *configs.Config, log zerolog.Logger) *running {
	t.Helper()
	h, err := New(cfg, log, WithID("h-test"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{h: h, stop: cancel, stopped: make(chan struct{})}
	go func() {
		defer close(r.stopped)
		if err := h.Run(ctx); err != nil {
			t.Errorf("handler run: %v", err)
		}
	}()
	t.Cleanup(func() { r.shutdown(t, 10*time.Second) })
	return r
}

// engine returns the running handler's engine once Run has made it.
func (r *running) engine(t *testing.T) *engine {
	t.Helper()
	select {
	case <-r.h.engReady:
		return r.h.eng
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's engine was not made within 10s")
		return nil
	}
}

// shutdown stops the handler and fails the test if Run has not returned
// within d.
func (r *running) shutdown(t *testing.T, d time.Duration) {
	t.Helper()
	if r.waited {
		return
	}
	r.waited = true
	r.stop()
	select {
	case <-r.stopped:
	case <-time.After(d):
		t.Fatalf("handler did not stop within %v", d)
	}
}

// connMgr is the connection manager's end: the handler's PUB output
// (subscribed to sender + " ") and the ROUTER its zhttp-in connects to.
type connMgr struct {
	out    *zmq.Socket // SUB, bound at condure_out_specs
	router *zmq.Socket // ROUTER_MANDATORY, bound at condure_in_stream_specs
}

func newConnMgr(t *testing.T, cfg *configs.Config, sender string) *connMgr {
	t.Helper()
	out, err := zmq.New(zmq.Sub, zmq.Options{Subscribe: []string{sender + " "}, RcvHWM: 200000})
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Bind(cfg.Handler.CondureOutSpecs[0]); err != nil {
		t.Fatal(err)
	}
	router, err := zmq.New(zmq.Router, zmq.Options{RouterMandatory: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := router.Bind(cfg.Handler.CondureInStreamSpecs[0]); err != nil {
		t.Fatal(err)
	}
	return &connMgr{out: out, router: router}
}

// send sends p to the handler, waiting for the handler's ROUTER to have
// connected.
func (c *connMgr) send(t *testing.T, p *zhttp.Packet) {
	t.Helper()
	msg := p.AppendMessage(nil)
	testwait.For(t, 5*time.Second, func() error { return c.router.Send([]byte("h-test"), nil, msg) })
}

// close closes both sockets; call it from the goroutine that used them last.
func (c *connMgr) close() { c.out.Close(); c.router.Close() }

// countPackets receives the handler's output on c.out until stop is closed,
// counting the packets of session id in n. It owns c.out meanwhile.
func (c *connMgr) countPackets(stop <-chan struct{}, id string, n *atomic.Int64) {
	c.watch(stop, id, func(*zhttp.Packet) { n.Add(1) })
}

// watch receives the handler's output on c.out until stop is closed,
// calling fn with each packet of session id. It owns c.out meanwhile.
func (c *connMgr) watch(stop <-chan struct{}, id string, fn func(*zhttp.Packet)) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		msg, err := c.out.Recv()
		if err != nil {
			continue
		}
		_, body, err := zhttp.SplitPub(msg[0])
		if err != nil {
			continue
		}
		if p, err := zhttp.ParseMessage(body); err == nil && p.ID == id {
			fn(p)
		}
	}
}

// proxyPush is the proxy's accept PUSH, bound at proxy_accept_spec.
func proxyPush(t *testing.T, cfg *configs.Config) *zmq.Socket {
	t.Helper()
	push, err := zmq.New(zmq.Push, zmq.Options{SndHWM: 100000})
	if err != nil {
		t.Fatal(err)
	}
	if err := push.Bind(cfg.Handler.ProxyAcceptSpec[0]); err != nil {
		t.Fatal(err)
	}
	return push
}

// holdAccept is a handoff of stream holds on channel ch, one per session id,
// all from connection manager sender.
func holdAccept(sender, ch string, credits int64, ids ...string) *handoff.Accept {
	a := &handoff.Accept{
		Request: handoff.HTTPData{Method: "GET", URI: "http://x/stream"},
		Response: handoff.HTTPData{Code: 200, Reason: "OK", Headers: zhttp.Headers{
			{Name: "Grip-Hold", Value: "stream"}, {Name: "Grip-Channel", Value: ch},
			{Name: "Content-Type", Value: "text/plain"}}},
		ResponseSent: true,
	}
	for _, id := range ids {
		a.Sessions = append(a.Sessions, handoff.Session{Sender: sender, ID: id, InSeq: 1, OutSeq: 1, OutCredits: credits})
	}
	return a
}

func sessionIDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return ids
}
