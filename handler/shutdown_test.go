package handler

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	ts "github.com/pushpin-go/pushpin/proto/tnetstring"
	"github.com/pushpin-go/pushpin/proto/zhttp"
	"github.com/pushpin-go/pushpin/proto/zmq"
)

// The handler stops while its inputs are still posting to a busy engine:
// PULL, SUB and command-socket publishers flood a channel whose every
// publish costs the engine 64 packets, and the connection manager floods
// the zhttp input, so the engine's queue is full when the stop comes. An
// input blocked posting to the stopped engine used to hang Run for ever
// (the engine takes a few more events after the stop, at random, and each
// frees one waiting input).
func TestShutdownWhileInputsPost(t *testing.T) {
	// Three rounds: the old code hung in about three runs of four.
	for round := range 3 {
		t.Run(fmt.Sprint(round), shutdownWhileInputsPost)
	}
}

func shutdownWhileInputsPost(t *testing.T) {
	dir := t.TempDir()
	cfg := handlerCfg(dir)
	cfg.Handler.PushInSpec = []string{"ipc://" + filepath.Join(dir, "pull")}
	cfg.Handler.PushInSubSpecs = []string{"ipc://" + filepath.Join(dir, "sub")}
	cfg.Handler.CommandSpec = []string{"ipc://" + filepath.Join(dir, "command")}
	cm := newConnMgr(t, cfg, "cm")
	push := proxyPush(t, cfg)
	defer push.Close()
	r := startHandler(t, cfg, zerolog.Nop())
	pub := startXPub(t, cfg.Handler.PushInSubSpecs[0])

	if err := push.Send(holdAccept("cm", "flood", 1<<40, "watched").AppendMessage(nil)); err != nil {
		t.Fatal(err)
	}
	if err := push.Send(holdAccept("elsewhere", "flood", 1<<40, sessionIDs("f", 63)...).AppendMessage(nil)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() error {
		if pub.subs.Load() == 0 {
			return fmt.Errorf("the handler's SUB has not subscribed to the flood channel")
		}
		return nil
	})

	var delivered atomic.Int64
	stopCount, counted := make(chan struct{}), make(chan struct{})
	go func() { defer close(counted); cm.countPackets(stopCount, "watched", &delivered) }()
	defer func() { close(stopCount); <-counted; cm.close() }()

	// Each flooder uses its socket alone until stopped (before the sockets
	// close: defers run in reverse); TrySend, so none waits on the stopped
	// handler.
	stopFlood := make(chan struct{})
	var flooders sync.WaitGroup
	flood := func(s *zmq.Socket, frames ...[]byte) {
		flooders.Add(1)
		go func() {
			defer flooders.Done()
			for {
				select {
				case <-stopFlood:
					return
				default:
					_ = s.TrySend(frames...)
				}
			}
		}()
	}
	pusher := connect(t, zmq.Push, cfg.Handler.PushInSpec[0])
	defer pusher.Close()
	flood(pusher, []byte(`J{"channel":"flood","formats":{"http-stream":{"content":"y\n"}}}`))
	dealer := connect(t, zmq.Dealer, cfg.Handler.CommandSpec[0])
	defer dealer.Close()
	req, err := ts.Encode(map[string]any{"id": "1", "method": "publish", "args": map[string]any{"items": []any{
		map[string]any{"channel": "flood", "formats": map[string]any{"http-stream": map[string]any{"content": "z\n"}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { close(stopFlood); flooders.Wait() }()
	flood(dealer, nil, req)

	pub.flooding.Store(true)
	waitFor(t, 30*time.Second, func() error {
		if n := delivered.Load(); n < 500 {
			return fmt.Errorf("%d flood publishes delivered", n)
		}
		return nil
	})
	// The connection manager's end floods packets for a session the
	// handler does not hold (cheap for the engine, but each is an event).
	cm.send(t, &zhttp.Packet{From: "cm", ID: "gone", Type: zhttp.KeepAlive})
	flood(cm.router, []byte("h-test"), nil, (&zhttp.Packet{From: "cm", ID: "gone", Type: zhttp.KeepAlive}).AppendMessage(nil))
	r.shutdown(t, 10*time.Second)
}

// connect returns a socket of type typ connected to spec.
func connect(t *testing.T, typ zmq.Type, spec string) *zmq.Socket {
	t.Helper()
	s, err := zmq.New(typ, zmq.Options{SndHWM: 100000})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(spec); err != nil {
		s.Close()
		t.Fatal(err)
	}
	return s
}
