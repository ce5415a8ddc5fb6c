package zurl

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/internal/testwait"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// holdBackend answers with headers at once and holds the body until the
// test ends or the request is aborted (counted in aborted).
func holdBackend(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var aborted atomic.Int64
	release := make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		select {
		case <-req.Context().Done():
			aborted.Add(1)
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); be.Close() })
	return be, &aborted
}

func fastTimers(ka, expiry time.Duration) func(*Server) {
	return func(s *Server) {
		s.timers = timers{sweep: 20 * time.Millisecond, keepAlive: ka, expiry: expiry, worker: 10 * time.Second}
	}
}

// Keep-alives for requesters that set ext.multi come batched in one
// list-form packet carrying each session's next seq; others get their own.
func TestKeepAliveBatched(t *testing.T) {
	t.Parallel()
	be, _ := holdBackend(t)
	r := startZurl(t, nil, fastTimers(300*time.Millisecond, time.Hour))
	next := map[string]int64{}
	for _, id := range []string{"m1", "m2", "m3", "single"} {
		ack := r.request(&zhttp.Packet{ID: id, Method: "GET", URI: be.URL + "/", Credits: 100, HasCredits: true,
			IgnorePolicies: true, Ext: zhttp.Ext{Multi: id != "single"}})
		head := r.must(id, 10*time.Second)
		if ack.Seq != 0 || head.Seq != 1 || !head.HasCode || !head.More {
			t.Fatalf("%s: ack %+v head %+v", id, ack, head)
		}
		next[id] = 2
	}
	// Make them due together: on a loaded machine the four requests above
	// can straddle sweeps.
	now := time.Now().UnixNano()
	r.srv.sess.each(func(ss *session) { ss.lastOut.Store(now) })
	seen := map[string]bool{}
	for _, id := range []string{"m1", "m2", "m3", "single"} {
		p := r.must(id, 5*time.Second)
		if p.Type != zhttp.KeepAlive || p.Seq != next[id] {
			t.Fatalf("%s: want keep-alive seq %d, got %+v", id, next[id], p)
		}
		seen[id] = true
	}
	var batched []string
	for _, b := range r.batches {
		for _, x := range b.IDs {
			batched = append(batched, x.ID)
		}
	}
	got := strings.Join(batched, ",")
	if !strings.Contains(got, "m1") || !strings.Contains(got, "m2") || !strings.Contains(got, "m3") || strings.Contains(got, "single") {
		t.Fatalf("batched ids %q", got)
	}
	if len(r.batches) == 0 || len(r.batches[0].IDs) < 2 {
		t.Fatalf("keep-alives not batched: %+v", r.batches)
	}
}

// A session that hears nothing from its requester for the expiry period
// ends with session-timeout and its backend request is aborted; one that
// gets keep-alives lives on.
func TestExpiry(t *testing.T) {
	t.Parallel()
	be, aborted := holdBackend(t)
	r := startZurl(t, nil, fastTimers(time.Hour, 600*time.Millisecond))
	// The silent session's last packet is its request, sent after start:
	// it cannot expire sooner than the expiry after start, however slow
	// the machine is (start taken after the heads flaked under load).
	start := time.Now()
	for _, id := range []string{"silent", "alive"} {
		r.request(&zhttp.Packet{ID: id, Method: "GET", URI: be.URL + "/", Credits: 100, HasCredits: true, IgnorePolicies: true})
		r.must(id, 10*time.Second) // head
	}
	var p *zhttp.Packet
	for p == nil {
		r.later(&zhttp.Packet{ID: "alive", Type: zhttp.KeepAlive})
		p = r.recvFor("silent", 100*time.Millisecond)
		if time.Since(start) > 10*time.Second {
			t.Fatal("silent session never expired")
		}
	}
	if p.Type != zhttp.Error || p.Condition != "session-timeout" {
		t.Fatalf("want session-timeout, got %+v", p)
	}
	if time.Since(start) < 600*time.Millisecond {
		t.Fatalf("expired after %v", time.Since(start))
	}
	testwait.For(t, 5*time.Second, func() error {
		if aborted.Load() != 1 || r.srv.Open() != 1 {
			return fmt.Errorf("aborted %d, open %d; want 1, 1", aborted.Load(), r.srv.Open())
		}
		return nil
	})
}

// max_open_requests: a request beyond the limit waits (unacked) until a
// slot frees.
func TestMaxOpenRequests(t *testing.T) {
	t.Parallel()
	be, _ := holdBackend(t)
	r := startZurl(t, func(c *configs.ZurlConfig) { c.MaxOpenRequests = 2 })
	for _, id := range []string{"o1", "o2"} {
		r.request(&zhttp.Packet{ID: id, Method: "GET", URI: be.URL + "/", Credits: 100, HasCredits: true, IgnorePolicies: true})
		r.must(id, 10*time.Second)
	}
	third := &zhttp.Packet{From: "proxy", ID: "o3", HasSeq: true, Stream: true, Method: "GET", URI: be.URL + "/",
		Credits: 100, HasCredits: true, IgnorePolicies: true}
	r.seq["o3"] = 1
	if err := r.push.Send(third.AppendMessage(nil)); err != nil {
		t.Fatal(err)
	}
	if p := r.recvFor("o3", 300*time.Millisecond); p != nil {
		t.Fatalf("third request served beyond max_open_requests: %+v", p)
	}
	r.later(&zhttp.Packet{ID: "o1", Type: zhttp.Cancel})
	if p := r.must("o3", 10*time.Second); p.Type != zhttp.KeepAlive || p.Seq != 0 {
		t.Fatalf("third ack: %+v", p)
	}
}

func TestMaxSize(t *testing.T) {
	t.Parallel()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/chunked" {
			backendWrite(t, w, strings.Repeat("x", 60))
			w.(http.Flusher).Flush()
			backendWrite(t, w, strings.Repeat("y", 60))
			return
		}
		backendWrite(t, w, strings.Repeat("z", 1000))
	}))
	defer be.Close()
	r := startZurl(t, nil)
	for _, path := range []string{"/length", "/chunked"} {
		p := r.request(&zhttp.Packet{ID: path, Method: "GET", URI: be.URL + path, Credits: 10000, HasCredits: true,
			IgnorePolicies: true, MaxSize: 100})
		for p.Type == zhttp.KeepAlive || (p.Type == zhttp.Data && p.More) {
			p = r.must(path, 10*time.Second)
		}
		if p.Type != zhttp.Error || p.Condition != "max-size-exceeded" {
			t.Fatalf("%s: %+v", path, p)
		}
	}
}

func TestRedirectsAndTimeout(t *testing.T) {
	t.Parallel()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case "/a":
			http.Redirect(w, req, "/b", http.StatusFound)
		case "/loop":
			http.Redirect(w, req, "/loop", http.StatusFound)
		case "/slow":
			select {
			case <-time.After(5 * time.Second):
			case <-req.Context().Done():
			}
		default:
			backendWrite(t, w, "b")
		}
	}))
	defer be.Close()
	r := startZurl(t, nil)
	p := r.request(&zhttp.Packet{ID: "nofollow", Method: "GET", URI: be.URL + "/a", Credits: 1000, HasCredits: true, IgnorePolicies: true})
	if code, hdr, _ := r.readResponse(p); code != 302 || hdr.Get("Location") != "/b" {
		t.Fatalf("without follow-redirects: %d %v", code, hdr)
	}
	p = r.request(&zhttp.Packet{ID: "follow", Method: "GET", URI: be.URL + "/a", Credits: 1000, HasCredits: true, IgnorePolicies: true, FollowRedirects: true})
	if code, _, body := r.readResponse(p); code != 200 || string(body) != "b" {
		t.Fatalf("follow-redirects: %d %q", code, body)
	}
	for _, c := range []struct {
		id   string
		req  zhttp.Packet
		cond string
	}{
		{"loop", zhttp.Packet{URI: be.URL + "/loop", FollowRedirects: true}, "too-many-redirects"},
		{"slow", zhttp.Packet{URI: be.URL + "/slow", Timeout: 200}, "connection-timeout"},
	} {
		q := c.req
		q.ID, q.Method, q.Credits, q.HasCredits, q.IgnorePolicies = c.id, "GET", 1000, true, true
		p := r.request(&q)
		for p.Type == zhttp.KeepAlive {
			p = r.must(c.id, 10*time.Second)
		}
		if p.Type != zhttp.Error || p.Condition != c.cond {
			t.Fatalf("%s: %+v", c.id, p)
		}
	}
}

func withAckDelay(d time.Duration) func(*Server) { return func(s *Server) { s.timers.ack = d } }

// A complete request's keep-alive ack waits for the response: a fast
// response comes first (seq 0, with ext.multi and our address) and no ack
// follows; a slow one is preceded by the ack once the delay has passed,
// and the requester can then cancel it.
func TestDeferredAck(t *testing.T) {
	t.Parallel()
	var aborted atomic.Int64
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/slow" {
			<-req.Context().Done()
			aborted.Add(1)
			return
		}
		backendWrite(t, w, "fast")
	}))
	defer be.Close()
	r := startZurl(t, nil, withAckDelay(300*time.Millisecond))

	p := r.request(&zhttp.Packet{ID: "fast", Method: "GET", URI: be.URL + "/fast", Credits: 1000, HasCredits: true,
		IgnorePolicies: true, Ext: zhttp.Ext{Multi: true}})
	if p.Type != zhttp.Data || p.Seq != 0 || p.Code != 200 || string(p.Body) != "fast" || !p.Ext.Multi || p.From != r.zid {
		t.Fatalf("first reply: %+v", p)
	}
	if q := r.recvFor("fast", 600*time.Millisecond); q != nil {
		t.Fatalf("packet after the complete response: %+v", q)
	}

	start := time.Now()
	p = r.request(&zhttp.Packet{ID: "slow", Method: "GET", URI: be.URL + "/slow", Credits: 1000, HasCredits: true,
		IgnorePolicies: true, Ext: zhttp.Ext{Multi: true}})
	if p.Type != zhttp.KeepAlive || p.Seq != 0 || !p.Ext.Multi {
		t.Fatalf("late ack: %+v", p)
	}
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Fatalf("ack after %v, want the 300 ms delay", el)
	}
	r.later(&zhttp.Packet{ID: "slow", Type: zhttp.Cancel})
	testwait.For(t, 10*time.Second, func() error {
		if aborted.Load() != 1 {
			return fmt.Errorf("backend request not aborted")
		}
		return nil
	})
	// A body to come needs its credits at once.
	p = r.request(&zhttp.Packet{ID: "post", Method: "POST", URI: be.URL + "/fast", Credits: 1000, HasCredits: true,
		IgnorePolicies: true, More: true, Body: []byte("a")})
	if p.Type != zhttp.Credit || p.Seq != 0 {
		t.Fatalf("ack of a request with more body: %+v", p)
	}
	r.later(&zhttp.Packet{ID: "post", Body: []byte("b")})
	if code, _, b := r.readResponse(r.must("post", 10*time.Second)); code != 200 || string(b) != "fast" {
		t.Fatalf("post: %d %q", code, b)
	}
}

// Sessions run on reused worker goroutines: sequential requests keep one
// worker, which exits once idle for the worker timeout.
func TestWorkersReusedThenExit(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { backendWrite(t, w, "ok") }))
	defer be.Close()
	r := startZurl(t, nil, func(s *Server) { s.timers.worker = 500 * time.Millisecond })
	// This server's workers only (the receiver is the first argument).
	workers := func() int { return strings.Count(stacks(), fmt.Sprintf("zurl.(*Server).work(%p", r.srv)) }
	// idle counts this server's workers parked in their select.
	idle := func() int {
		n := 0
		for _, g := range strings.Split(stacks(), "\n\n") {
			if strings.HasPrefix(g, "goroutine ") && strings.Contains(g, " [select") &&
				strings.Contains(g, fmt.Sprintf("zurl.(*Server).work(%p", r.srv)) {
				n++
			}
		}
		return n
	}
	for i := 0; i < 20; i++ {
		p := r.request(&zhttp.Packet{ID: fmt.Sprint("w", i), Method: "GET", URI: be.URL + "/", Credits: 100, HasCredits: true, IgnorePolicies: true})
		if code, _, b := r.readResponse(p); code != 200 || string(b) != "ok" {
			t.Fatalf("request %d: %d %q", i, code, b)
		}
		// The slot frees inside the session's run, a moment before its
		// worker is back waiting for the next one: wait for both, so the
		// next request finds the worker idle.
		testwait.For(t, 5*time.Second, func() error {
			if r.srv.Open() != 0 {
				return fmt.Errorf("session still open")
			}
			if n := idle(); n != workers() {
				return fmt.Errorf("%d of %d workers idle", n, workers())
			}
			return nil
		})
	}
	if n := workers(); n != 1 {
		t.Fatalf("%d workers after 20 sequential requests, want 1", n)
	}
	testwait.For(t, 5*time.Second, func() error {
		if n := workers(); n != 0 {
			return fmt.Errorf("%d idle workers left", n)
		}
		return nil
	})
}
