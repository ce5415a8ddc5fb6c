package handler

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

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
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		if len(c.pks) >= n {
			out := append([]*zhttp.Packet(nil), c.pks...)
			c.mu.Unlock()
			return out
		}
		c.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("want %d packets, have %d", n, len(c.pks))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func runEngine(t *testing.T) (*engine, *capture) {
	c := &capture{}
	e := newEngine("h1", zerolog.Nop(), c.send, nil, 20)
	go e.run()
	t.Cleanup(e.stop)
	return e, c
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

func publishStream(e *engine, content string, action publish.Action) {
	it := &publish.Item{Channel: "ch", HTTPStream: &publish.HTTPStream{Action: action, Content: []byte(content)}}
	e.post(func() { e.publish(it) })
}

// A stream hold resumes with the handed-over seq, sends the initial response
// without Grip or length headers, appends publishes in order within the
// client's credits, and ends on close.
func TestLeadStreamHold(t *testing.T) {
	t.Parallel()
	e, c := runEngine(t)
	e.post(func() { e.accept(streamAccept("s1", 7)) })
	pk := c.wait(t, 2)
	if pk[0].Type != zhttp.KeepAlive || pk[0].Seq != 3 || pk[0].From != "h1" || !pk[0].Ext.Multi {
		t.Fatalf("resume packet %+v", pk[0])
	}
	r := pk[1]
	if r.Seq != 4 || r.Code != 200 || string(r.Body) != "open\n" || !r.More || r.Headers.Has("Grip-Hold") || r.Headers.Has("Content-Length") {
		t.Fatalf("initial response %+v", r)
	}
	// 2 credits left: "hello\n" goes out as "he", the rest after a credit.
	publishStream(e, "hello\n", publish.ActionSend)
	pk = c.wait(t, 3)
	if string(pk[2].Body) != "he" || pk[2].Seq != 5 {
		t.Fatalf("partial body %+v", pk[2])
	}
	e.post(func() {
		e.onPacket(&zhttp.Packet{From: "condure", ID: "s1", Seq: 2, HasSeq: true, Type: zhttp.Credit, Credits: 100, HasCredits: true})
	})
	pk = c.wait(t, 4)
	if string(pk[3].Body) != "llo\n" || pk[3].Seq != 6 {
		t.Fatalf("rest of body %+v", pk[3])
	}
	for i := 0; i < 3; i++ {
		publishStream(e, fmt.Sprintf("m%d\n", i), publish.ActionSend)
	}
	publishStream(e, "", publish.ActionClose)
	pk = c.wait(t, 8)
	for i := 0; i < 3; i++ {
		if string(pk[4+i].Body) != fmt.Sprintf("m%d\n", i) || pk[4+i].Seq != int64(7+i) {
			t.Fatalf("publish %d: %+v", i, pk[4+i])
		}
	}
	if pk[7].More || len(pk[7].Body) != 0 {
		t.Fatalf("close packet %+v", pk[7])
	}
	waitCounts(t, e, 0, 0)
}

// A response hold answers once with the published response, merged over
// the original headers.
func TestLeadResponseHold(t *testing.T) {
	t.Parallel()
	e, c := runEngine(t)
	a := streamAccept("r1", 8192)
	a.Response.Headers = zhttp.Headers{{Name: "Grip-Hold", Value: "response"}, {Name: "Grip-Channel", Value: "ch"}, {Name: "X-Orig", Value: "1"}}
	e.post(func() { e.accept(a) })
	c.wait(t, 1)
	it := &publish.Item{Channel: "ch", HTTPResponse: &publish.HTTPResponse{Code: 201, Reason: "Created", Body: []byte("pub\n"),
		Headers: zhttp.Headers{{Name: "X-Pub", Value: "2"}}}}
	e.post(func() { e.publish(it) })
	pk := c.wait(t, 2)
	r := pk[1]
	if r.Code != 201 || string(r.Body) != "pub\n" || r.More || r.Headers.Get("X-Orig") != "1" || r.Headers.Get("X-Pub") != "2" {
		t.Fatalf("response %+v", r)
	}
	waitCounts(t, e, 0, 0)
	e.post(func() { e.publish(it) }) // nobody left: nothing more is sent
	time.Sleep(50 * time.Millisecond)
	if n := len(c.wait(t, 2)); n != 2 {
		t.Fatalf("%d packets after the hold ended", n)
	}
}

// Cancel from the client ends the session; an out-of-sequence packet is
// answered with cancel.
func TestLeadCancelAndSeq(t *testing.T) {
	t.Parallel()
	e, c := runEngine(t)
	e.post(func() { e.accept(streamAccept("a", 8192)); e.accept(streamAccept("b", 8192)) })
	c.wait(t, 4)
	waitCounts(t, e, 2, 1)
	e.post(func() { e.onPacket(&zhttp.Packet{From: "condure", ID: "a", Seq: 2, HasSeq: true, Type: zhttp.Cancel}) })
	waitCounts(t, e, 1, 1)
	e.post(func() {
		e.onPacket(&zhttp.Packet{From: "condure", ID: "b", Seq: 9, HasSeq: true, Type: zhttp.Credit, Credits: 1})
	})
	pk := c.wait(t, 5)
	if pk[4].Type != zhttp.Cancel || pk[4].ID != "b" {
		t.Fatalf("want cancel for b, got %+v", pk[4])
	}
	waitCounts(t, e, 0, 0)
}

// Keep-alives toward a multi client go out batched as list-form ids.
func TestLeadBatchedKeepAlive(t *testing.T) {
	t.Parallel()
	e, c := runEngine(t)
	e.keepAliveEvery = time.Second
	for i := 0; i < 3; i++ {
		id := fmt.Sprintf("k%d", i)
		e.post(func() { e.accept(streamAccept(id, 8192)) })
	}
	pk := c.wait(t, 7)
	last := pk[len(pk)-1]
	if last.Type != zhttp.KeepAlive || len(last.IDs) != 3 {
		t.Fatalf("want one keep-alive for 3 ids, got %+v", last)
	}
}

func waitCounts(t *testing.T, e *engine, sessions, channels int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ch := make(chan [2]int)
		e.post(func() { s, c := e.counts(); ch <- [2]int{s, c} })
		got := <-ch
		if got == [2]int{sessions, channels} {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("counts %v, want %d sessions %d channels", got, sessions, channels)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func BenchmarkLeadFanout(b *testing.B) {
	for _, n := range []int{1, 100, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var bytes int
			e := newEngine("h1", zerolog.Nop(), func(f []byte) { bytes += len(f) }, nil, 20)
			for i := 0; i < n; i++ {
				a := streamAccept(fmt.Sprintf("s%d", i), 1<<40)
				e.accept(a)
			}
			it := &publish.Item{Channel: "ch", HTTPStream: &publish.HTTPStream{Content: []byte("hello subscribers\n")}}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				e.publish(it)
			}
		})
	}
}
