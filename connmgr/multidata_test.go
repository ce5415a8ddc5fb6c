package connmgr

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// heldClient is a client holding a streaming response.
type heldClient struct {
	c  net.Conn
	br *bufio.Reader
	id string
}

const streamHead = "HTTP/1.1 200 OK\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n"

// openHeld opens n held streams: each request's first packet must
// announce multi-data; the server answers with a streaming head and the
// chunk "start\n" (seq 0), whose credits it collects.
func openHeld(t *testing.T, f *fakeServer, addr string, n int) []*heldClient {
	t.Helper()
	var hs []*heldClient
	for i := 0; i < n; i++ {
		c, br := dial(t, addr)
		_, _ = c.Write([]byte("GET /stream HTTP/1.1\r\nHost: h\r\n\r\n"))
		p := f.first()
		if !p.Ext.Multi || !p.Ext.MultiData {
			t.Fatalf("first packet ext %+v: want multi and multi-data", p.Ext)
		}
		f.send(&zhttp.Packet{ID: p.ID, Seq: 0, Ext: zhttp.Ext{Multi: true}, Code: 200, HasCode: true, Reason: "OK",
			HasHeaders: true, Body: []byte("start\n"), More: true})
		check(t, "head", readHead(t, br)+readN(t, br, 11), streamHead+"6\r\nstart\n\r\n")
		hs = append(hs, &heldClient{c: c, br: br, id: p.ID})
	}
	credits := f.credits(len(hs))
	for _, h := range hs {
		check(t, "credit for start", credits[h.id], creditSeen{total: 6, seqs: []int64{1}})
	}
	return hs
}

type creditSeen struct {
	total int64
	seqs  []int64
}

// credits collects credit packets (either id form) until they credited
// `entries` session entries in all, skipping keep-alives; every packet
// must carry ext.multi-data.
func (f *fakeServer) credits(entries int) map[string]creditSeen {
	f.t.Helper()
	seen := map[string]creditSeen{}
	for n := 0; n < entries; {
		p := f.later()
		if p.Type == zhttp.KeepAlive {
			continue
		}
		if p.Type != zhttp.Credit || !p.Ext.MultiData || !p.Ext.Multi {
			f.t.Fatalf("want a credit with ext multi and multi-data, got %+v", p)
		}
		add := func(id string, seq int64) {
			n++
			x := seen[id]
			x.total += p.Credits
			x.seqs = append(x.seqs, seq)
			seen[id] = x
		}
		if len(p.IDs) == 0 {
			add(p.ID, p.Seq)
		}
		for _, x := range p.IDs {
			add(x.ID, x.Seq)
		}
	}
	return seen
}

func listIDs(hs []*heldClient, seq int64) []zhttp.IDSeq {
	var ids []zhttp.IDSeq
	for _, h := range hs {
		ids = append(ids, zhttp.IDSeq{ID: h.id, Seq: seq})
	}
	return ids
}

// One data packet with a list-form id reaches every listed session, each
// with its own seq; credits come back for exactly the bytes written, in
// list form toward a multi server.
func TestMultiDataFanOut(t *testing.T) {
	t.Parallel()
	ours(t, "multi-data (one data packet for many sessions) is our extension; condure does not announce it")
	base, addr := startServer(t, nil)
	f := newFakeServer(t, base, "fakehandler", true)
	hs := openHeld(t, f, addr, 40)
	for round := int64(1); round <= 3; round++ {
		body := fmt.Sprintf("message %d\n", round)
		f.send(&zhttp.Packet{IDs: listIDs(hs, round), Ext: zhttp.Ext{Multi: true}, Body: []byte(body), More: true})
		for _, h := range hs {
			check(t, "chunk", readN(t, h.br, 15), fmt.Sprintf("a\r\n%s\r\n", body))
		}
		// The 40 credits of one job go out together: fewer packets than
		// sessions, each session once with its next seq.
		packets := 0
		seen := map[string]creditSeen{}
		for len(seen) < len(hs) {
			p := f.later()
			if p.Type == zhttp.KeepAlive {
				continue
			}
			packets++
			check(t, "credit type/amount/ext", []any{p.Type, p.Credits, p.Ext.MultiData}, []any{zhttp.Credit, 10, true})
			for _, x := range p.IDs {
				if _, dup := seen[x.ID]; dup {
					t.Fatalf("credit twice for %s", x.ID)
				}
				seen[x.ID] = creditSeen{total: p.Credits, seqs: []int64{x.Seq}}
			}
			if p.ID != "" {
				seen[p.ID] = creditSeen{total: p.Credits, seqs: []int64{p.Seq}}
			}
		}
		for _, h := range hs {
			check(t, "credit seq", seen[h.id].seqs, []int64{round + 1})
		}
		if packets >= len(hs) {
			t.Fatalf("%d credit packets for %d sessions: not batched", packets, len(hs))
		}
	}
	// A final list packet ends every stream; the connections persist.
	f.send(&zhttp.Packet{IDs: listIDs(hs, 4), Ext: zhttp.Ext{Multi: true}})
	for _, h := range hs {
		check(t, "last chunk", readN(t, h.br, 5), "0\r\n\r\n")
	}
}

// A list mixing good and bad seqs: the session with the gap cancels and
// closes, the others get the body.
func TestMultiDataSeqPerSession(t *testing.T) {
	t.Parallel()
	ours(t, "multi-data is our extension")
	base, addr := startServer(t, nil)
	f := newFakeServer(t, base, "fakehandler", true)
	hs := openHeld(t, f, addr, 3)
	ids := listIDs(hs, 1)
	ids[1].Seq = 7
	f.send(&zhttp.Packet{IDs: ids, Ext: zhttp.Ext{Multi: true}, Body: []byte("x"), More: true})
	check(t, "a", readN(t, hs[0].br, 6), "1\r\nx\r\n")
	check(t, "c", readN(t, hs[2].br, 6), "1\r\nx\r\n")
	expectEOF(t, hs[1].br)
	cancels, credits := 0, 0
	for cancels+credits < 3 {
		p := f.later()
		switch p.Type {
		case zhttp.Cancel:
			check(t, "cancel", []any{p.ID, p.Seq}, []any{hs[1].id, 2})
			cancels++
		case zhttp.Credit:
			credits += len(p.IDs)
			if p.ID != "" {
				credits++
			}
		}
	}
	check(t, "cancels/credits", []any{cancels, credits}, []any{1, 2})
}

// List and single packets interleaved keep each session's order.
func TestMultiDataMixedOrder(t *testing.T) {
	t.Parallel()
	ours(t, "multi-data is our extension")
	base, addr := startServer(t, nil)
	f := newFakeServer(t, base, "fakehandler", true)
	hs := openHeld(t, f, addr, 2)
	a, b := hs[0], hs[1]
	m := zhttp.Ext{Multi: true}
	f.send(&zhttp.Packet{IDs: []zhttp.IDSeq{{ID: a.id, Seq: 1}, {ID: b.id, Seq: 1}}, Ext: m, Body: []byte("one\n"), More: true})
	f.send(&zhttp.Packet{ID: a.id, Seq: 2, Ext: m, Body: []byte("two\n"), More: true})
	f.send(&zhttp.Packet{IDs: []zhttp.IDSeq{{ID: b.id, Seq: 2}, {ID: a.id, Seq: 3}}, Ext: m, Body: []byte("three\n"), More: true})
	f.send(&zhttp.Packet{ID: b.id, Seq: 3, Ext: m, Body: []byte("four\n"), More: true})
	check(t, "a", readN(t, a.br, 9+9+11), "4\r\none\n\r\n4\r\ntwo\n\r\n6\r\nthree\n\r\n")
	check(t, "b", readN(t, b.br, 9+11+10), "4\r\none\n\r\n6\r\nthree\n\r\n5\r\nfour\n\r\n")
	// A worker holds credits back while packets are queued for it and
	// merges a session's: how many credit packets come depends on timing;
	// the totals and the seqs (consecutive from 2) do not.
	want := map[string]int64{a.id: 4 + 4 + 6, b.id: 4 + 6 + 5}
	got := map[string]creditSeen{}
	for n := 0; got[a.id].total < want[a.id] || got[b.id].total < want[b.id]; n++ {
		if n == 6 {
			t.Fatalf("credits after 6 entries: %+v, want totals %v", got, want)
		}
		for id, x := range f.credits(1) {
			y := got[id]
			y.total += x.total
			y.seqs = append(y.seqs, x.seqs...)
			got[id] = y
		}
	}
	for _, h := range hs {
		x := got[h.id]
		if x.total != want[h.id] {
			t.Errorf("%s credited %d, want %d", h.id, x.total, want[h.id])
		}
		for i, seq := range x.seqs {
			if seq != int64(2+i) {
				t.Errorf("%s credit seqs %v, want consecutive from 2", h.id, x.seqs)
				break
			}
		}
	}
	// The end of both responses, after the credits: credits still held
	// back when a session ends are moot and dropped with it.
	f.send(&zhttp.Packet{IDs: []zhttp.IDSeq{{ID: a.id, Seq: 4}, {ID: b.id, Seq: 4}}, Ext: m})
	check(t, "a end", readN(t, a.br, 5), "0\r\n\r\n")
	check(t, "b end", readN(t, b.br, 5), "0\r\n\r\n")
}

// A worker that gets many data packets in a row returns the credits they
// earned once none is queued, merged per session (how many packets that
// takes depends on timing; the log says): every written byte is credited.
func TestMultiDataCreditsDeferred(t *testing.T) {
	t.Parallel()
	ours(t, "multi-data is our extension")
	base, addr := startServer(t, nil)
	f := newFakeServer(t, base, "fakehandler", true)
	hs := openHeld(t, f, addr, 3)
	m := zhttp.Ext{Multi: true}
	const k = 50
	for i := 0; i < k; i++ {
		f.send(&zhttp.Packet{IDs: listIDs(hs, int64(1+i)), Ext: m, Body: []byte("msg\n"), More: true})
	}
	for _, h := range hs {
		check(t, "body "+h.id, readN(t, h.br, k*len("4\r\nmsg\n\r\n")), strings.Repeat("4\r\nmsg\n\r\n", k))
	}
	entries, total := 0, map[string]int64{}
	for len(total) < len(hs) || total[hs[0].id] < 4*k || total[hs[1].id] < 4*k || total[hs[2].id] < 4*k {
		for id, x := range f.credits(1) {
			total[id] += x.total
		}
		entries++
		if entries > len(hs)*k {
			t.Fatalf("credits %v after %d entries", total, entries)
		}
	}
	for _, h := range hs {
		check(t, "credited "+h.id, total[h.id], int64(4*k))
	}
	t.Logf("%d credit entries for %d packets to %d sessions", entries, k, len(hs))
}

// A listed session whose client disconnected is skipped (its cancel went
// out); the others are served.
func TestMultiDataDisconnected(t *testing.T) {
	t.Parallel()
	ours(t, "multi-data is our extension")
	base, addr := startServer(t, nil)
	f := newFakeServer(t, base, "fakehandler", true)
	hs := openHeld(t, f, addr, 4)
	hs[2].c.Close()
	q := f.later()
	check(t, "cancel", []any{q.Type, q.ID}, []any{zhttp.Cancel, hs[2].id})
	f.send(&zhttp.Packet{IDs: listIDs(hs, 1), Ext: zhttp.Ext{Multi: true}, Body: []byte("hi"), More: true})
	for i, h := range hs {
		if i != 2 {
			check(t, "chunk", readN(t, h.br, 7), "2\r\nhi\r\n")
		}
	}
	got := f.credits(3)
	if _, ok := got[hs[2].id]; ok {
		t.Fatalf("credit for a closed session: %+v", got)
	}
	for i, h := range hs {
		if i != 2 {
			check(t, "credit", got[h.id], creditSeen{total: 2, seqs: []int64{2}})
		}
	}
}

// A listed session whose client stopped reading has its credits in use
// (the socket holds what it was sent): a list packet it has no credits for
// ends it as condure would (cancel, close), while the others get the body
// and their credits.
func TestMultiDataTooFewCredits(t *testing.T) {
	t.Parallel()
	ours(t, "multi-data is our extension")
	base, addr := startServer(t, nil)
	f := newFakeServer(t, base, "fakehandler", true)
	hs := openHeld(t, f, addr, 2)
	sc, stuck := dialStalled(t, f, addr)
	defer sc.close()
	seq, _ := fillUntilStuck(t, f, stuck)
	ids := append(listIDs(hs, 1), zhttp.IDSeq{ID: stuck, Seq: seq})
	f.send(&zhttp.Packet{IDs: ids, Ext: zhttp.Ext{Multi: true}, Body: []byte("hi"), More: true})
	for _, h := range hs {
		check(t, "chunk", readN(t, h.br, 7), "2\r\nhi\r\n")
	}
	cancelled := false
	got := map[string]int64{}
	for !cancelled || len(got) < len(hs) {
		q := f.later()
		switch q.Type {
		case zhttp.Cancel:
			check(t, "cancel", q.ID, stuck)
			cancelled = true
		case zhttp.Credit:
			for _, x := range q.IDs {
				got[x.ID] += q.Credits
			}
			if q.ID != "" {
				got[q.ID] += q.Credits
			}
		}
	}
	check(t, "credits", []any{got[hs[0].id], got[hs[1].id], got[stuck]}, []any{2, 2, 0})
}
