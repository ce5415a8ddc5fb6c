package handler

import (
	"fmt"
	"testing"

	"github.com/pushpin-go/pushpin/proto/publish"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// A stream hold resumes with the handed-over seq, sends the initial response
// without Grip or length headers, appends publishes in order within the
// client's credits, and ends on close.
func TestStreamHoldResumesAndStreamsWithinCredits(t *testing.T) {
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
func TestResponseHoldAnswersOnce(t *testing.T) {
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
	// Nobody left: nothing more is sent. waitCounts runs after the
	// publish on the engine goroutine, which sends as it goes.
	e.post(func() { e.publish(it) })
	waitCounts(t, e, 0, 0)
	if n := len(c.wait(t, 2)); n != 2 {
		t.Fatalf("%d packets after the hold ended", n)
	}
}

// Cancel from the client ends the session; an out-of-sequence packet is
// answered with cancel.
func TestCancelEndsSessionOutOfSequenceIsCancelled(t *testing.T) {
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
