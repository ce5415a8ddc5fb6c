package handler

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/proto/zhttp"
	"github.com/pushpin-go/pushpin/proto/zmq"
)

// xpubPublisher is a publisher on an XPUB socket connected to the
// handler's SUB input. Its goroutine owns the socket: it counts the
// subscribe and unsubscribe messages the handler's SUB sends, and while
// flooding is set it sends bursts of publishes to channel "flood" between
// looks at them.
type xpubPublisher struct {
	subs, unsubs atomic.Int64
	flooding     atomic.Bool
	sent         atomic.Int64
	stop, done   chan struct{}
}

func startXPub(t *testing.T, spec string) *xpubPublisher {
	t.Helper()
	x, err := zmq.New(zmq.XPub, zmq.Options{RecvTimeout: 1, SndHWM: 100000})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Connect(spec); err != nil {
		t.Fatal(err)
	}
	p := &xpubPublisher{stop: make(chan struct{}), done: make(chan struct{})}
	item := []byte(`J{"formats":{"http-stream":{"content":"x\n"}}}`)
	go func() {
		defer close(p.done)
		defer x.Close()
		for {
			select {
			case <-p.stop:
				return
			default:
			}
			if p.flooding.Load() {
				for range 64 {
					if x.TrySend([]byte("flood"), item) == nil {
						p.sent.Add(1)
					}
				}
			}
			msg, err := x.Recv()
			if err != nil || len(msg) != 1 || len(msg[0]) == 0 {
				continue
			}
			switch msg[0][0] {
			case 1:
				p.subs.Add(1)
			case 0:
				p.unsubs.Add(1)
			}
		}
	}()
	t.Cleanup(func() { close(p.stop); <-p.done })
	return p
}

// A mass unsubscribe (a cancel ending holds on 10,000 channels, more than
// the 4,096 the SUB input's change queue once held) while SUB publishes
// keep arriving completes: the publisher sees every unsubscribe, and the
// handler goes on delivering. The engine used to block on a full queue of
// subscription changes while the SUB input, the only reader of that queue,
// was blocked posting a publish to the engine's full queue.
func TestMassUnsubscribeWhileSubPublishesArrive(t *testing.T) {
	const channels = 10000
	dir := t.TempDir()
	cfg := handlerCfg(dir)
	cfg.Handler.PushInSubSpecs = []string{"ipc://" + filepath.Join(dir, "sub")}
	cm := newConnMgr(t, cfg, "cm")
	push := proxyPush(t, cfg)
	defer push.Close()
	startHandler(t, cfg, zerolog.Nop())
	pub := startXPub(t, cfg.Handler.PushInSubSpecs[0])

	// One hold per channel, and on "flood" one hold that the test watches
	// plus 63 behind another connection manager (nobody receives them: the
	// PUB filters them out), so each flood publish costs the engine 64
	// packets and the SUB input outruns it.
	ids := sessionIDs("c", channels)
	for i, id := range ids {
		if err := push.Send(holdAccept("cm", fmt.Sprintf("ch%d", i), 1000, id).AppendMessage(nil)); err != nil {
			t.Fatal(err)
		}
	}
	if err := push.Send(holdAccept("cm", "flood", 1<<40, "watched").AppendMessage(nil)); err != nil {
		t.Fatal(err)
	}
	if err := push.Send(holdAccept("elsewhere", "flood", 1<<40, sessionIDs("f", 63)...).AppendMessage(nil)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() error {
		if n := pub.subs.Load(); n < channels+1 {
			return fmt.Errorf("publisher saw %d subscriptions, want %d", n, channels+1)
		}
		return nil
	})

	var delivered atomic.Int64
	stopCount := make(chan struct{})
	counted := make(chan struct{})
	go func() { defer close(counted); cm.countPackets(stopCount, "watched", &delivered) }()
	defer func() { close(stopCount); <-counted; cm.close() }()

	pub.flooding.Store(true)
	waitFor(t, 10*time.Second, func() error {
		if n := delivered.Load(); n < 2000 {
			return fmt.Errorf("%d flood publishes delivered", n)
		}
		return nil
	})
	cancel := zhttp.Packet{From: "cm", Type: zhttp.Cancel}
	for _, id := range ids {
		cancel.IDs = append(cancel.IDs, zhttp.IDSeq{ID: id, Seq: 1})
	}
	cm.send(t, &cancel)
	waitFor(t, 30*time.Second, func() error {
		if n := pub.unsubs.Load(); n < channels {
			return fmt.Errorf("publisher saw %d unsubscriptions of %d while flooding (%d sent, %d delivered)", n, channels, pub.sent.Load(), delivered.Load())
		}
		return nil
	})
	pub.flooding.Store(false)

	// Still serving: the flood drains and its hold gets what follows.
	before := delivered.Load()
	pub.flooding.Store(true)
	waitFor(t, 10*time.Second, func() error {
		if delivered.Load() == before {
			return fmt.Errorf("no publish delivered after the mass unsubscribe")
		}
		return nil
	})
}
