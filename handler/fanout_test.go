package handler

import (
	"fmt"
	"sort"
	"testing"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/proto/handoff"
	"github.com/pushpin-go/pushpin/proto/publish"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// A publish reaches multi-data sessions in one packet per connection
// manager, each listed with its own next seq, while a condure-style session,
// a session short of credits and a session with user-data get their own
// packets; seqs stay continuous across both forms.
func TestMultiDataFanout(t *testing.T) {
	t.Parallel()
	e, c := syncEngine()
	for _, a := range []*handoff.Accept{
		mdataAccept("cm1", "a", 8192, true), mdataAccept("cm1", "b", 8192, true),
		mdataAccept("cm2", "c", 8192, true),
		mdataAccept("condure", "d", 8192, false),
		mdataAccept("cm1", "e", 5+3, true), // initial body (5 bytes) leaves 3 credits
	} {
		e.accept(a)
	}
	ud := mdataAccept("cm1", "u", 8192, true)
	ud.Sessions[0].UserData = []byte("1:x,")
	e.accept(ud)
	c.take() // keep-alives and initial responses (seq 3 and 4)

	e.publish(&publish.Item{Channel: "ch", HTTPStream: &publish.HTTPStream{Content: []byte("hello\n")}})
	e.publish(&publish.Item{Channel: "ch", HTTPStream: &publish.HTTPStream{Content: []byte("again\n")}})
	pk := c.take()

	lists := map[string][]string{} // "from/body" -> sorted "id@seq"
	singles := map[string][]string{}
	for _, p := range pk {
		if p.Type != zhttp.Data || !p.More {
			t.Fatalf("unexpected packet %+v", p)
		}
		if len(p.IDs) > 0 {
			for _, x := range p.IDs {
				lists[string(p.Body)] = append(lists[string(p.Body)], fmt.Sprintf("%s@%d", x.ID, x.Seq))
			}
			continue
		}
		singles[p.ID] = append(singles[p.ID], fmt.Sprintf("%d:%s", p.Seq, p.Body))
	}
	for k := range lists {
		sort.Strings(lists[k])
	}
	if got := fmt.Sprint(lists["hello\n"]); got != "[a@5 b@5 c@5]" {
		t.Errorf("hello batched to %s", got)
	}
	if got := fmt.Sprint(lists["again\n"]); got != "[a@6 b@6 c@6]" {
		t.Errorf("again batched to %s", got)
	}
	if got := fmt.Sprint(singles["d"]); got != "[5:hello\n 6:again\n]" {
		t.Errorf("condure session got %q", got)
	}
	if got := fmt.Sprint(singles["u"]); got != "[5:hello\n 6:again\n]" {
		t.Errorf("user-data session got %q", got)
	}
	// 3 credits: "hel" now, the rest when credits come back.
	if got := fmt.Sprint(singles["e"]); got != "[5:hel]" {
		t.Errorf("short-credit session got %q", got)
	}
	e.onPacket(&zhttp.Packet{From: "cm1", ID: "e", Seq: 2, HasSeq: true, Type: zhttp.Credit, Credits: 100, HasCredits: true})
	var rest []string
	for _, p := range c.take() {
		rest = append(rest, fmt.Sprintf("%s %d:%s", p.ID, p.Seq, p.Body))
	}
	// What was queued goes out joined, in one packet.
	if got := fmt.Sprint(rest); got != "[e 6:lo\nagain\n]" {
		t.Errorf("after credits: %q", got)
	}
}

// A batch is split into packets that grow from firstBatchIDs to
// maxBatchIDs ids, each session listed once, and the packets of several
// connection managers go out interleaved, not one after the other.
func TestMultiDataSplit(t *testing.T) {
	t.Parallel()
	c := &capture{}
	var to []string
	e := newEngine("h1", zerolog.Nop(), func(f []byte) {
		addr, _, _ := zhttp.SplitPub(f)
		to = append(to, string(addr))
		c.send(f)
	}, nil, 20)
	n := maxBatchIDs*2 + 7
	for i := 0; i < n; i++ {
		e.accept(mdataAccept(fmt.Sprintf("cm%d", i%2), fmt.Sprintf("s%d", i), 8192, true))
	}
	c.take()
	to = nil
	e.publish(&publish.Item{Channel: "ch", HTTPStream: &publish.HTTPStream{Content: []byte("x")}})
	pk := c.take()
	// Per connection manager (1,028 and 1,027 sessions): 64, 256, the rest.
	var sizes []string
	for i, p := range pk {
		sizes = append(sizes, fmt.Sprintf("%s:%d", to[i], len(p.IDs)))
	}
	if len(pk) != 6 || len(pk[0].IDs) != firstBatchIDs || to[0] == to[1] || len(pk[2].IDs) != 4*firstBatchIDs {
		t.Fatalf("packets %v, want 64, 64, 256, 256 and the rest, alternating", sizes)
	}
	seen := map[string]bool{}
	for _, p := range pk {
		for _, x := range p.IDs {
			if seen[x.ID] || x.Seq != 5 {
				t.Fatalf("id %s seq %d (dup %v)", x.ID, x.Seq, seen[x.ID])
			}
			seen[x.ID] = true
		}
	}
	if len(seen) != n {
		t.Fatalf("%d sessions listed, want %d", len(seen), n)
	}
}

// BenchmarkFanoutPerSession publishes to n condure-style sessions (no
// ext.multi-data): one packet each.
func BenchmarkFanoutPerSession(b *testing.B) {
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

// BenchmarkFanoutMultiData is BenchmarkFanoutPerSession with the connection
// manager announcing ext.multi-data: one shared packet per 1024 sessions.
func BenchmarkFanoutMultiData(b *testing.B) {
	for _, n := range []int{1, 100, 10000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var bytes int
			e := newEngine("h1", zerolog.Nop(), func(f []byte) { bytes += len(f) }, nil, 20)
			for i := 0; i < n; i++ {
				e.accept(mdataAccept("cm1", fmt.Sprintf("s%d", i), 1<<40, true))
			}
			it := &publish.Item{Channel: "ch", HTTPStream: &publish.HTTPStream{Content: []byte("hello subscribers\n")}}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				e.publish(it)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/subscriber")
		})
	}
}
