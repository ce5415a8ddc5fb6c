package handler

// Helpers shared by the engine's tests (intake, fan-out, keep-alive), and
// the tests of the engine loop itself.

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/internal/testwait"
	"github.com/pushpin-go/pushpin/proto/handoff"
	"github.com/pushpin-go/pushpin/proto/publish"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// capture collects what the engine sends to connection managers.
type capture struct {
	mu  sync.Mutex
	pks []*zhttp.Packet
}

func (c *capture) send(frame []byte) {
	_, msg, err := zhttp.SplitPub(frame)
	if err != nil {
		panic(err)
	}
	p, err := zhttp.ParseMessage(msg)
	if err != nil {
		panic(err)
	}
	c.mu.Lock()
	c.pks = append(c.pks, p)
	c.mu.Unlock()
}

func (c *capture) wait(t *testing.T, n int) []*zhttp.Packet {
	t.Helper()
	var out []*zhttp.Packet
	testwait.For(t, 10*time.Second, func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.pks) < n {
			return fmt.Errorf("want %d packets, have %d", n, len(c.pks))
		}
		out = append([]*zhttp.Packet(nil), c.pks...)
		return nil
	})
	return out
}

func (c *capture) take() []*zhttp.Packet {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.pks
	c.pks = nil
	return out
}

func runEngine(t *testing.T) (*engine, *capture) {
	c := &capture{}
	e := newEngine("h1", zerolog.Nop(), c.send, nil, 20)
	go e.run()
	t.Cleanup(e.stop)
	return e, c
}

// syncEngine is an engine driven from the test goroutine (no run loop), so
// maintenance passes can be given any clock.
func syncEngine() (*engine, *capture) {
	c := &capture{}
	return newEngine("h1", zerolog.Nop(), c.send, nil, 20), c
}

func streamAccept(id string, credits int64) *handoff.Accept {
	return &handoff.Accept{
		Sessions: []handoff.Session{{Sender: "condure", ID: id, InSeq: 2, OutSeq: 3, OutCredits: credits, Multi: true}},
		Request:  handoff.HTTPData{Method: "GET", URI: "http://x/stream"},
		Response: handoff.HTTPData{Code: 200, Reason: "OK", Body: []byte("open\n"), Headers: zhttp.Headers{
			{Name: "Grip-Hold", Value: "stream"}, {Name: "Grip-Channel", Value: "ch"},
			{Name: "Content-Type", Value: "text/plain"}, {Name: "Content-Length", Value: "5"}}},
	}
}

func mdataAccept(sender, id string, credits int64, mdata bool) *handoff.Accept {
	a := streamAccept(id, credits)
	a.Sessions[0].Sender, a.Sessions[0].MultiData = sender, mdata
	return a
}

func publishStream(e *engine, content string, action publish.Action) {
	it := &publish.Item{Channel: "ch", HTTPStream: &publish.HTTPStream{Action: action, Content: []byte(content)}}
	e.post(func() { e.publish(it) })
}

func waitCounts(t *testing.T, e *engine, sessions, channels int) {
	t.Helper()
	testwait.For(t, 5*time.Second, func() error {
		ch := make(chan [2]int)
		e.post(func() { s, c := e.counts(); ch <- [2]int{s, c} })
		if got := <-ch; got != [2]int{sessions, channels} {
			return fmt.Errorf("counts %v, want %d sessions %d channels", got, sessions, channels)
		}
		return nil
	})
}

// Once the engine has stopped, post returns at once (the event is dropped)
// even with the queue full, so no input can hang the shutdown.
func TestPostAfterStopReturns(t *testing.T) {
	t.Parallel()
	e := newEngine("h1", zerolog.Nop(), func([]byte) {}, nil, 20)
	ran := make(chan struct{})
	go func() { defer close(ran); e.run() }()
	e.stop()
	<-ran
	posted := make(chan struct{})
	go func() {
		defer close(posted)
		for range cap(e.ev) + 10 {
			e.post(func() { t.Error("event ran after stop") })
		}
	}()
	select {
	case <-posted:
	case <-time.After(5 * time.Second):
		t.Fatal("post blocked after the engine stopped")
	}
}
