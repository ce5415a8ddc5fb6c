package proxy

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/pushpin-go/pushpin/internal/testwait"
	"github.com/pushpin-go/pushpin/proto/wscontrol"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// A queued message is split only when its piece is at least minPiece:
// credits coming back a few bytes at a time no longer cut a steady stream
// into crumbs.
func TestWSQueueTakeMinPiece(t *testing.T) {
	var q wsQueue
	q.push(wsFrame{kind: wsText, data: bytes.Repeat([]byte("a"), 1000), reqID: "r"})
	q.push(wsFrame{kind: wsPing, data: []byte("p")})
	if _, _, ok := q.take(999, 4096); ok {
		t.Fatal("took a piece below minPiece")
	}
	if _, _, ok := q.take(0, 0); ok {
		t.Fatal("took a content frame without credits")
	}
	f, whole, ok := q.take(1000, 4096)
	if !ok || !whole || len(f.data) != 1000 || f.more || f.reqID != "r" {
		t.Fatalf("whole frame: ok=%v whole=%v len=%d more=%v req=%q", ok, whole, len(f.data), f.more, f.reqID)
	}
	// A message larger than what the credits can ever cover goes in
	// pieces of at least minPiece; the last piece carries the rest.
	q = wsQueue{}
	q.push(wsFrame{kind: wsBinary, data: bytes.Repeat([]byte("b"), 10000), reqID: "big"})
	if _, _, ok := q.take(3000, 4096); ok {
		t.Fatal("split below minPiece")
	}
	f, whole, ok = q.take(5000, 4096)
	if !ok || whole || len(f.data) != 5000 || !f.more || f.cont || f.reqID != "" {
		t.Fatalf("first piece: ok=%v whole=%v len=%d more=%v cont=%v", ok, whole, len(f.data), f.more, f.cont)
	}
	if q.bytes != 5000 {
		t.Fatalf("queued %d bytes, want 5000", q.bytes)
	}
	f, whole, ok = q.take(8192, 4096)
	if !ok || !whole || len(f.data) != 5000 || f.more || !f.cont || f.reqID != "big" {
		t.Fatalf("last piece: ok=%v whole=%v len=%d more=%v cont=%v", ok, whole, len(f.data), f.more, f.cont)
	}
}

// wsbOpen opens sessions behind the test connection manager with the
// given credits (mdata: it takes list-form data packets) and returns
// their cids.
func wsbOpen(r *wsRig, credits int64, sessions ...struct {
	id    string
	mdata bool
}) []string {
	r.t.Helper()
	var cids []string
	for _, c := range sessions {
		r.open(c.id, credits, c.mdata, hdr("Sec-WebSocket-Extensions", "grip"))
		cids = append(cids, r.ctlNext(wscontrol.Here).CID)
	}
	return cids
}

// wsbCredit gives credits to several sessions in one list-form packet, as
// our connection manager returns the credits a shared packet earned.
func wsbCredit(r *wsRig, n int64, ids ...string) {
	r.t.Helper()
	p := zhttp.Packet{From: "condure", Type: zhttp.Credit, Credits: n, HasCredits: true, Ext: zhttp.Ext{Multi: true}}
	for _, id := range ids {
		p.IDs = append(p.IDs, zhttp.IDSeq{ID: id, Seq: r.cSeq[id]})
		r.cSeq[id]++
	}
	testwait.For(r.t, time.Second, func() error { return r.cRouter.Send([]byte(testID), nil, p.AppendMessage(nil)) })
}

// wsbPublish sends one multi-send of msg to every cid.
func wsbPublish(r *wsRig, cids []string, msg string) {
	r.t.Helper()
	it := wscontrol.NewItem(cids[0], wscontrol.Send)
	it.CIDs, it.Message = cids[1:], []byte(msg)
	r.ctlSend(it)
}

// wsbGot records what each session received, in order.
type wsbGot map[string][]string

// recv takes the next packet: returns how many ids it carried.
func (g wsbGot) recv(r *wsRig) int {
	r.t.Helper()
	p := r.clientRecv()
	if len(p.IDs) == 0 {
		g[p.ID] = append(g[p.ID], fmt.Sprintf("%s:%s#%d", p.Type, p.Body, p.Seq))
		return 1
	}
	for _, x := range p.IDs {
		g[x.ID] = append(g[x.ID], fmt.Sprintf("%s:%s#%d", p.Type, p.Body, x.Seq))
	}
	return len(p.IDs)
}

func (g wsbGot) check(t *testing.T, id string, want ...string) {
	t.Helper()
	if fmt.Sprint(g[id]) != fmt.Sprint(want) {
		t.Fatalf("%s got %v, want %v", id, g[id], want)
	}
}

// Sessions that ran out of credits queue the messages published to them;
// the credits coming back for all of them in one list-form packet let the
// queued messages go in shared packets (one per message, not one per
// session), each session's in order with its own seqs; a session behind
// condure (no multi-data) gets its own packets.
func TestWSBatchFromQueues(t *testing.T) {
	r := newWSRig(t, "* 127.0.0.1:9")
	cids := wsbOpen(r, 2, []struct {
		id    string
		mdata bool
	}{{"b-1", true}, {"b-2", true}, {"b-3", false}}...)
	for _, m := range []string{"m1", "m2", "m3", "m4"} {
		wsbPublish(r, cids, m)
	}
	got := wsbGot{}
	// m1 fits everyone's 2 credits: one shared packet, one single.
	if n := got.recv(r) + got.recv(r); n != 3 {
		t.Fatalf("first message: %d deliveries, want 3", n)
	}
	wsbCredit(r, 4, "b-1", "b-2")
	for i := 0; i < 2; i++ {
		if n := got.recv(r); n != 2 {
			t.Fatalf("queued message %d went in a packet for %d sessions, want 2", i+2, n)
		}
	}
	r.clientSend("b-3", zhttp.Packet{Type: zhttp.Credit, Credits: 6, HasCredits: true})
	for i := 0; i < 3; i++ {
		got.recv(r)
	}
	wsbCredit(r, 2, "b-1", "b-2")
	if n := got.recv(r); n != 2 {
		t.Fatalf("last message for %d sessions, want 2", n)
	}
	for _, id := range []string{"b-1", "b-2", "b-3"} {
		got.check(t, id, ":m1#1", ":m2#2", ":m3#3", ":m4#4")
	}
}

// A frame that cannot be shared (a ping to one session) keeps its place
// between batched messages.
func TestWSBatchKeepsOrder(t *testing.T) {
	r := newWSRig(t, "* 127.0.0.1:9")
	cids := wsbOpen(r, 0, []struct {
		id    string
		mdata bool
	}{{"o-1", true}, {"o-2", true}}...)
	wsbPublish(r, cids, "a")
	ping := wscontrol.NewItem(cids[0], wscontrol.Send)
	ping.ContentType, ping.Message = "ping", []byte("p")
	r.ctlSend(ping)
	wsbPublish(r, cids, "b")
	wsbPublish(r, cids, "c")
	// Let the ws-control items be queued before the credits come.
	s := r.px.wsSessions.get(clientKey("condure", "o-2"))
	testwait.For(t, 5*time.Second, func() error {
		n := 0
		s.with(func() { n = len(s.toClient.q) })
		if n < 3 {
			return errString("not queued yet")
		}
		return nil
	})
	wsbCredit(r, 100, "o-1", "o-2")
	got := wsbGot{}
	for n := 0; n < 7; {
		n += got.recv(r)
	}
	got.check(t, "o-1", ":a#1", "ping:p#2", ":b#3", ":c#4")
	got.check(t, "o-2", ":a#1", ":b#2", ":c#3")
}

// Credits returned a few bytes at a time do not cut a queued message into
// crumbs: a piece goes once they reach half the client's window, the
// rest once they cover it.
func TestWSNoCrumbs(t *testing.T) {
	r := newWSRig(t, "* 127.0.0.1:9")
	cids := wsbOpen(r, 100, []struct {
		id    string
		mdata bool
	}{{"c-1", false}}...)
	wsbPublish(r, cids, string(bytes.Repeat([]byte("f"), 60)))
	if p := r.clientRecv(); len(p.Body) != 60 {
		t.Fatalf("first message %d bytes", len(p.Body))
	}
	wsbPublish(r, cids, string(bytes.Repeat([]byte("x"), 100))) // 40 credits left: waits
	credit := func(times int) {
		for i := 0; i < times; i++ {
			r.clientSend("c-1", zhttp.Packet{Type: zhttp.Credit, Credits: 5, HasCredits: true})
		}
	}
	credit(2) // 50: half the window
	if p := r.clientRecv(); len(p.Body) != 50 || !p.More {
		t.Fatalf("got %d bytes more=%v, want a 50-byte piece", len(p.Body), p.More)
	}
	credit(10)
	if p := r.clientRecv(); len(p.Body) != 50 || p.More {
		t.Fatalf("got %d bytes more=%v, want the 50-byte rest", len(p.Body), p.More)
	}
}

// A steady stream of messages to many sessions behind a small window, with
// the credits coming back as our connection manager returns them (list
// form for a shared packet): the ws-control goroutine's batches and the
// credit packets' batches run at the same time. Every session gets every
// message, in order, with consecutive seqs, and the messages queued
// behind a full window go in shared packets too: at most one per message
// and credit-returning worker.
func TestWSBatchSteadyStream(t *testing.T) {
	r := newWSRig(t, "* 127.0.0.1:9")
	const sessions, msgs = 10, 300
	var specs []struct {
		id    string
		mdata bool
	}
	for i := 0; i < sessions; i++ {
		specs = append(specs, struct {
			id    string
			mdata bool
		}{fmt.Sprintf("st-%d", i), i != 0}) // st-0 is behind condure
	}
	cids := wsbOpen(r, 30, specs...) // 7 messages of 4 bytes
	next := map[string]int{}
	seq := map[string]int64{}
	packets, deliveries := 0, 0
	take := func(d time.Duration) bool {
		msg, ok := r.clientTry(d)
		if !ok {
			return false
		}
		to, m, err := zhttp.SplitPub(msg[0])
		if err != nil || string(to) != "condure" {
			t.Fatalf("bad frame %q", msg[0])
		}
		p, err := zhttp.ParseMessage(m)
		if err != nil {
			t.Fatal(err)
		}
		if p.Type != zhttp.Data {
			return true // keep-alives
		}
		ids := p.IDs
		if len(ids) == 0 {
			ids = []zhttp.IDSeq{{ID: p.ID, Seq: p.Seq}}
		}
		packets++
		var listed []string
		for _, x := range ids {
			deliveries++
			if want := fmt.Sprintf("m%03d", next[x.ID]); string(p.Body) != want || p.More {
				t.Fatalf("%s got %q more=%v, want %s", x.ID, p.Body, p.More, want)
			}
			if x.Seq != seq[x.ID]+1 {
				t.Fatalf("%s seq %d after %d", x.ID, x.Seq, seq[x.ID])
			}
			next[x.ID]++
			seq[x.ID] = x.Seq
			listed = append(listed, x.ID)
		}
		if len(p.IDs) == 0 {
			r.clientSend(p.ID, zhttp.Packet{Type: zhttp.Credit, Credits: int64(len(p.Body)), HasCredits: true})
		} else {
			// In two packets, as two connection-manager workers return
			// them (each its own sessions).
			var w [2][]string
			for _, id := range listed {
				k := id[len(id)-1] % 2
				w[k] = append(w[k], id)
			}
			for _, ids := range w {
				if len(ids) > 0 {
					wsbCredit(r, int64(len(p.Body)), ids...)
				}
			}
		}
		return true
	}
	for i := 0; i < msgs; i++ {
		wsbPublish(r, cids, fmt.Sprintf("m%03d", i))
		if i%25 == 24 { // bursts of 25 messages: more than the window
			for take(0) {
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for deliveries < sessions*msgs && time.Now().Before(deadline) {
		take(100 * time.Millisecond)
	}
	for _, s := range specs {
		if next[s.id] != msgs {
			t.Fatalf("%s got %d of %d messages", s.id, next[s.id], msgs)
		}
	}
	t.Logf("%d deliveries in %d packets", deliveries, packets)
	if shared := deliveries - msgs; packets-msgs > 2*msgs {
		t.Errorf("%d packets for %d shared deliveries: want at most two a message", packets-msgs, shared)
	}
}
