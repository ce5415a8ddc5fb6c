package handler

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/proto/publish"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// stalled makes session id's last credits older than readingGrace.
func stalled(e *engine, id string) {
	e.sessions[sessionKey{"condure", id}].lastCredit = time.Now().Add(-2 * readingGrace)
}

func publishTo(e *engine, content string) {
	e.publish(&publish.Item{Channel: "ch", HTTPStream: &publish.HTTPStream{Content: []byte(content)}})
}

func credit(e *engine, id string, seq, n int64) {
	e.onPacket(&zhttp.Packet{From: "condure", ID: id, Seq: seq, HasSeq: true, Type: zhttp.Credit, Credits: n, HasCredits: true})
}

// bodies renders data packets as "id seq:body" (with "/end" when the
// response ends there).
func bodies(pks []*zhttp.Packet) []string {
	var out []string
	for _, p := range pks {
		if p.Type != zhttp.Data {
			continue
		}
		s := fmt.Sprintf("%s %d:%s", p.ID, p.Seq, p.Body)
		if !p.More {
			s += "/end"
		}
		out = append(out, s)
	}
	return out
}

// Messages queued while the client had no credits go out joined, as many
// as the returned credits cover, one packet per credit return; a message
// split by the credits is finished in the next packet.
func TestQueuedMessagesJoinedWithinCredits(t *testing.T) {
	t.Parallel()
	e, c := syncEngine()
	e.accept(streamAccept("s", 5)) // the initial body takes every credit
	c.take()
	for _, m := range []string{"aaaa\n", "bbbb\n", "cccc\n", "dddd\n"} {
		publishTo(e, m)
	}
	if got := bodies(c.take()); len(got) != 0 {
		t.Fatalf("sent without credits: %q", got)
	}
	credit(e, "s", 2, 12)
	credit(e, "s", 3, 100)
	if got := fmt.Sprint(bodies(c.take())); got != "[s 5:aaaa\nbbbb\ncc s 6:cc\ndddd\n]" {
		t.Fatalf("got %q", got)
	}
	if s := e.sessions[sessionKey{"condure", "s"}]; s.queued != 0 || len(s.pending) != 0 {
		t.Fatalf("queue left: %d bytes, %d chunks", s.queued, len(s.pending))
	}
}

// A client that falls stream_max_queue_size behind has its response ended
// — everything it was sent is whole and in order, the rest of a message
// partly sent included, then the end — and is counted once; a client that
// keeps up, on the same channel, gets every message.
func TestSlowStreamEndedAtBound(t *testing.T) {
	t.Parallel()
	e, c := syncEngine()
	e.maxQueue = 1000
	e.accept(streamAccept("slow", 5+3)) // 3 credits left after the initial body
	e.accept(streamAccept("fast", 5+1000))
	c.take()
	stalled(e, "slow")
	msg := strings.Repeat("m", 99) + "\n"
	var fastGot []string
	fastSeq := int64(2)
	for i := 0; i < 20; i++ {
		publishTo(e, msg)
		for _, b := range bodies(c.take()) {
			if strings.HasPrefix(b, "fast") {
				fastGot = append(fastGot, b)
				credit(e, "fast", fastSeq, 100)
				fastSeq++
				continue
			}
			if b != "slow 5:mmm" {
				t.Fatalf("slow client got %q before its end", b)
			}
		}
		if e.backlog.ended.Load() > 0 {
			break
		}
	}
	if n := e.backlog.ended.Load(); n != 1 {
		t.Fatalf("%d clients ended, want the slow one", n)
	}
	slow := e.sessions[sessionKey{"condure", "slow"}]
	if slow == nil || !slow.done {
		t.Fatal("slow client's session gone before the rest of its message went out")
	}
	// 3 bytes went out before; credits for the rest of that message end it.
	credit(e, "slow", 2, 1000)
	got := bodies(c.take())
	if want := fmt.Sprintf("slow 6:%s/end", msg[3:]); len(got) != 1 || got[0] != want {
		t.Fatalf("slow client's last packets %q, want %q", got, want)
	}
	if e.sessions[sessionKey{"condure", "slow"}] != nil {
		t.Fatal("slow client's session kept after its end")
	}
	publishTo(e, msg)
	for _, b := range bodies(c.take()) {
		if !strings.HasPrefix(b, "fast") {
			t.Fatalf("packet after the end: %q", b)
		}
		fastGot = append(fastGot, b)
	}
	// Each message costs 100+chunkOverhead = 164 bytes of the bound: six
	// fit in 1000, the seventh ends the slow client; then one more.
	if len(fastGot) != 8 {
		t.Fatalf("fast client got %d messages: %q", len(fastGot), fastGot)
	}
}

// A client with nothing partly sent is ended at once: the end needs no
// credits.
func TestSlowStreamEndedWithoutCredits(t *testing.T) {
	t.Parallel()
	e, c := syncEngine()
	e.maxQueue = 500
	e.accept(streamAccept("s", 5))
	c.take()
	stalled(e, "s")
	for i := 0; i < 10 && e.backlog.ended.Load() == 0; i++ {
		publishTo(e, strings.Repeat("x", 99)+"\n")
	}
	if got := fmt.Sprint(bodies(c.take())); got != "[s 5:/end]" {
		t.Fatalf("got %q", got)
	}
	if n, _ := e.counts(); n != 0 {
		t.Fatalf("%d sessions left", n)
	}
}

// A client whose credits are still coming back is let past the bound, up
// to readingSlack times it (what is late may be the writes to it, not its
// reading); past that it is ended too.
func TestReadingStreamGetsSlackPastBound(t *testing.T) {
	t.Parallel()
	e, c := syncEngine()
	e.maxQueue = 500
	e.accept(streamAccept("s", 5))
	c.take()
	// Credits just came back (an hour ahead: however slow the machine
	// running the test, still within readingGrace).
	e.sessions[sessionKey{"condure", "s"}].lastCredit = time.Now().Add(time.Hour)
	msg := strings.Repeat("x", 99) + "\n"
	queued := 0
	for ; queued < 1000 && e.backlog.ended.Load() == 0; queued++ {
		publishTo(e, msg)
	}
	// Each message costs len(msg)+chunkOverhead of the bound: as many as
	// fit in readingSlack×500 are queued, the next one ends it.
	if want := int(e.maxQueue*readingSlack)/(len(msg)+chunkOverhead) + 1; queued != want || e.backlog.ended.Load() != 1 {
		t.Fatalf("ended after %d messages (%d ended)", queued, e.backlog.ended.Load())
	}
	if got := fmt.Sprint(bodies(c.take())); got != "[s 5:/end]" {
		t.Fatalf("got %q", got)
	}
}

// The running total of clients ended is logged when it has grown, at most
// every 10 s.
func TestBacklogTotalLogged(t *testing.T) {
	t.Parallel()
	var buf strings.Builder
	e := newEngine("h1", zerolog.New(&buf), func([]byte) {}, nil, 20)
	now := time.Now()
	e.reportBacklog(now)
	if buf.Len() != 0 {
		t.Fatalf("logged with nothing ended: %s", buf.String())
	}
	e.backlog.ended.Add(3)
	e.reportBacklog(now)
	e.backlog.ended.Add(1)
	e.reportBacklog(now.Add(5 * time.Second))
	if got := strings.Count(buf.String(), "\n"); got != 1 || !strings.Contains(buf.String(), `"total":3`) {
		t.Fatalf("log: %s", buf.String())
	}
	e.reportBacklog(now.Add(10 * time.Second))
	if !strings.Contains(buf.String(), `"total":4,"new":1`) {
		t.Fatalf("log: %s", buf.String())
	}
}

// A client ended with part of a message still unsent, whose credits have
// stopped, cannot take even the end of its response: once endWait has
// passed, maintain cancels the session so that the connection manager
// closes the connection, instead of leaving it (and its message) held
// until the stream timeout. A keep-alive from the connection manager
// (the client's connection is open) does not keep it.
func TestEndedStreamThatReadsNothingIsClosed(t *testing.T) {
	t.Parallel()
	e, c := syncEngine()
	e.maxQueue = 500
	e.accept(streamAccept("s", 5+3)) // 3 credits left after the initial body
	c.take()
	stalled(e, "s")
	for i := 0; i < 10 && e.backlog.ended.Load() == 0; i++ {
		publishTo(e, strings.Repeat("x", 99)+"\n")
	}
	s := e.sessions[sessionKey{"condure", "s"}]
	if s == nil || !s.done || len(s.pending) == 0 {
		t.Fatal("want an ended session waiting to send the rest of its message")
	}
	c.take()
	e.onPacket(&zhttp.Packet{From: "condure", ID: "s", Seq: 2, HasSeq: true, Type: zhttp.KeepAlive})
	now := time.Now()
	e.maintain(now.Add(endWait / 2))
	if e.sessions[s.key] == nil {
		t.Fatal("closed before endWait")
	}
	var cancels int
	for i := 1; i <= 100 && e.sessions[s.key] != nil; i++ { // every second, as run does
		e.maintain(now.Add(endWait/2 + time.Duration(i)*time.Second))
	}
	for _, p := range c.take() {
		if p.ID == "s" && p.Type == zhttp.Cancel {
			cancels++
		}
	}
	if e.sessions[s.key] != nil || cancels != 1 {
		t.Fatalf("session kept (%v) or %d cancels sent, want it closed with one", e.sessions[s.key] != nil, cancels)
	}
}
