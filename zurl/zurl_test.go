package zurl

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/proto/zhttp"
	"github.com/pushpin-go/pushpin/proto/zmq"
)

// requester plays the proxy: PUSH for first packets, ROUTER for later
// ones, SUB for replies.
type requester struct {
	t      *testing.T
	push   *zmq.Socket
	router *zmq.Socket
	sub    *zmq.Socket
	zid    string
	seq    map[string]int64
}

func startZurl(t *testing.T, mod func(*configs.ZurlConfig)) *requester {
	t.Helper()
	dir, err := os.MkdirTemp("", "zu")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg := configs.DefaultZurlConfig()
	cfg.InstanceID = "zurl-test"
	cfg.InSpec = "ipc://" + filepath.Join(dir, "in")
	cfg.InStreamSpec = "ipc://" + filepath.Join(dir, "in-stream")
	cfg.OutSpec = "ipc://" + filepath.Join(dir, "out")
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	r := &requester{t: t, zid: s.ID(), seq: map[string]int64{}}
	mk := func(typ zmq.Type, o zmq.Options, spec string) *zmq.Socket {
		sock, err := zmq.New(typ, o)
		if err != nil {
			t.Fatal(err)
		}
		if err := sock.Connect(spec); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sock.Close)
		return sock
	}
	r.sub = mk(zmq.Sub, zmq.Options{Subscribe: []string{"proxy "}}, cfg.OutSpec)
	r.push = mk(zmq.Push, zmq.Options{}, cfg.InSpec)
	r.router = mk(zmq.Router, zmq.Options{RouterMandatory: true}, cfg.InStreamSpec)
	time.Sleep(0) // connections complete asynchronously; request() retries
	return r
}

// request sends a first packet and returns the first reply, retrying while
// the SUB subscription propagates (slow joiner).
func (r *requester) request(p *zhttp.Packet) *zhttp.Packet {
	r.t.Helper()
	p.From, p.Stream, p.HasSeq, p.Seq = "proxy", true, true, 0
	r.seq[p.ID] = 1
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := r.push.Send(p.AppendMessage(nil)); err != nil {
			r.t.Fatal(err)
		}
		if q := r.recv(time.Second); q != nil {
			return q
		}
		p.ID += "x" // a new id for the retry; the lost one is abandoned
		r.seq[p.ID] = 1
	}
	r.t.Fatal("no reply from zurl")
	return nil
}

func (r *requester) recv(d time.Duration) *zhttp.Packet {
	r.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		msg, err := r.sub.Recv()
		if errors.Is(err, zmq.ErrTimeout) {
			continue
		}
		if err != nil {
			r.t.Fatal(err)
		}
		_, m, err := zhttp.SplitPub(msg[0])
		if err != nil {
			r.t.Fatal(err)
		}
		p, err := zhttp.ParseMessage(m)
		if err != nil {
			r.t.Fatal(err)
		}
		return p
	}
	return nil
}

func (r *requester) must(d time.Duration) *zhttp.Packet {
	r.t.Helper()
	p := r.recv(d)
	if p == nil {
		r.t.Fatal("timed out waiting for a packet")
	}
	return p
}

// later sends a packet through the ROUTER to zurl's identity.
func (r *requester) later(p *zhttp.Packet) {
	r.t.Helper()
	p.From, p.HasSeq = "proxy", true
	p.Seq = r.seq[p.ID]
	r.seq[p.ID]++
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := r.router.Send([]byte(r.zid), nil, p.AppendMessage(nil))
		if err == nil {
			return
		}
		// The ROUTER learns zurl's identity once its connection is up.
		if !errors.Is(err, zmq.ErrUnreachable) || time.Now().After(deadline) {
			r.t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readResponse collects a response, granting credits as a client would.
func (r *requester) readResponse(first *zhttp.Packet, id string, credit int64) (code int64, hdr zhttp.Headers, body []byte) {
	r.t.Helper()
	p := first
	for p.Type == zhttp.KeepAlive || p.Type == zhttp.Credit {
		p = r.must(10 * time.Second)
	}
	if p.Type != zhttp.Data || !p.HasCode {
		r.t.Fatalf("want response, got %+v", p)
	}
	code, hdr = p.Code, p.Headers
	for {
		body = append(body, p.Body...)
		if !p.More {
			return
		}
		if credit > 0 && len(p.Body) > 0 {
			r.later(&zhttp.Packet{ID: id, Type: zhttp.Credit, Credits: int64(len(p.Body)), HasCredits: true})
		}
		p = r.must(10 * time.Second)
	}
}

func TestGet(t *testing.T) {
	t.Parallel()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("X-Host", req.Host)
		w.Header().Set("X-UA", req.Header.Get("User-Agent"))
		io.WriteString(w, "hello")
	}))
	defer be.Close()
	r := startZurl(t, nil)
	first := r.request(&zhttp.Packet{ID: "g1", Method: "GET", URI: "http://example.com/x", Credits: 1000, HasCredits: true,
		ConnectHost: "127.0.0.1", ConnectPort: int64(be.Listener.Addr().(*net.TCPAddr).Port), IgnorePolicies: true,
		Headers: zhttp.Headers{{Name: "User-Agent", Value: "curl"}}})
	if first.From != r.zid {
		t.Fatalf("from %q", first.From)
	}
	code, hdr, body := r.readResponse(first, first.ID, 1000)
	if code != 200 || string(body) != "hello" || hdr.Get("X-Host") != "example.com" || hdr.Get("X-UA") != "curl" {
		t.Fatalf("got %d %q %v", code, body, hdr)
	}
}

// A 2 MB body streamed through a 16 KB credit window: zurl never has more
// body in flight than the requester granted.
func TestStreamWithinCredits(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("0123456789abcdef"), 128*1024)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { w.Write(data) }))
	defer be.Close()
	r := startZurl(t, nil)
	const window = 16 * 1024
	p := r.request(&zhttp.Packet{ID: "s1", Method: "GET", URI: be.URL + "/big", Credits: window, HasCredits: true, IgnorePolicies: true})
	id := p.ID
	outstanding := int64(window)
	h := sha256.New()
	for p.Type != zhttp.Data {
		p = r.must(10 * time.Second)
	}
	for {
		outstanding -= int64(len(p.Body))
		if outstanding < 0 {
			t.Fatalf("zurl sent %d bytes beyond the granted credits", -outstanding)
		}
		h.Write(p.Body)
		if !p.More {
			break
		}
		if len(p.Body) > 0 {
			r.later(&zhttp.Packet{ID: id, Type: zhttp.Credit, Credits: int64(len(p.Body)), HasCredits: true})
			outstanding += int64(len(p.Body))
		}
		p = r.must(10 * time.Second)
	}
	want := sha256.Sum256(data)
	if !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("body corrupted")
	}
}

func TestPostBody(t *testing.T) {
	t.Parallel()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		fmt.Fprintf(w, "%s %d", req.Method, len(b))
	}))
	defer be.Close()
	r := startZurl(t, nil)
	part := bytes.Repeat([]byte("x"), 1000)
	first := r.request(&zhttp.Packet{ID: "p1", Method: "POST", URI: be.URL + "/", Credits: 1000, HasCredits: true,
		IgnorePolicies: true, More: true, Body: part, Headers: zhttp.Headers{{Name: "Content-Length", Value: "3000"}}})
	if first.Type != zhttp.Credit || first.Credits <= 0 {
		t.Fatalf("want a credit ack, got %+v", first)
	}
	r.later(&zhttp.Packet{ID: first.ID, Body: part, More: true})
	r.later(&zhttp.Packet{ID: first.ID, Body: part})
	p := r.must(10 * time.Second)
	code, _, body := r.readResponse(p, first.ID, 1000)
	if code != 200 || string(body) != "POST 3000" {
		t.Fatalf("got %d %q", code, body)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	r := startZurl(t, nil)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().String()
	l.Close()
	p := r.request(&zhttp.Packet{ID: "e1", Method: "GET", URI: "http://" + closed + "/", Credits: 100, HasCredits: true, IgnorePolicies: true})
	for p.Type == zhttp.KeepAlive {
		p = r.must(10 * time.Second)
	}
	if p.Type != zhttp.Error || p.Condition != "remote-connection-failed" {
		t.Fatalf("refused: %+v", p)
	}
	// The default deny list covers 127.*: without ignore-policies, refused.
	p = r.request(&zhttp.Packet{ID: "e2", Method: "GET", URI: "http://127.0.0.1:1/", Credits: 100, HasCredits: true})
	if p.Type != zhttp.Error || p.Condition != "policy-violation" {
		t.Fatalf("policy: %+v", p)
	}
	// Without stream:true, Pushpin's servers answer bad-request.
	q := &zhttp.Packet{From: "proxy", ID: "e3", HasSeq: true, Method: "GET", URI: "http://x/"}
	if err := r.push.Send(q.AppendMessage(nil)); err != nil {
		t.Fatal(err)
	}
	p = r.must(10 * time.Second)
	if p.Type != zhttp.Error || p.Condition != "bad-request" {
		t.Fatalf("no stream: %+v", p)
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	be := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { io.WriteString(w, "secure") }))
	defer be.Close()
	r := startZurl(t, nil)
	p := r.request(&zhttp.Packet{ID: "t1", Method: "GET", URI: be.URL + "/", Credits: 100, HasCredits: true, IgnorePolicies: true})
	for p.Type == zhttp.KeepAlive {
		p = r.must(10 * time.Second)
	}
	if p.Type != zhttp.Error || p.Condition != "tls-error" {
		t.Fatalf("self-signed without ignore-tls-errors: %+v", p)
	}
	p = r.request(&zhttp.Packet{ID: "t2", Method: "GET", URI: be.URL + "/", Credits: 100, HasCredits: true, IgnorePolicies: true, IgnoreTLSErrors: true})
	if code, _, body := r.readResponse(p, p.ID, 100); code != 200 || string(body) != "secure" {
		t.Fatalf("got %d %q", code, body)
	}
}

// Cancel mid-response aborts the backend request.
func TestCancel(t *testing.T) {
	t.Parallel()
	var gone atomic.Bool
	release := make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Write([]byte("start"))
		w.(http.Flusher).Flush()
		select {
		case <-req.Context().Done():
			gone.Store(true)
		case <-release:
		}
	}))
	defer be.Close()
	defer close(release)
	r := startZurl(t, nil)
	p := r.request(&zhttp.Packet{ID: "c1", Method: "GET", URI: be.URL + "/", Credits: 100, HasCredits: true, IgnorePolicies: true})
	for p.Type != zhttp.Data {
		p = r.must(10 * time.Second)
	}
	r.later(&zhttp.Packet{ID: p.ID, Type: zhttp.Cancel})
	deadline := time.Now().Add(10 * time.Second)
	for !gone.Load() {
		if time.Now().After(deadline) {
			t.Fatal("backend request not aborted by cancel")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Backend connections are reused across requests, and goroutines and fds
// come back to their baseline after many requests.
func TestReuseAndNoLeaks(t *testing.T) {
	var conns atomic.Int64
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { io.WriteString(w, "ok") }))
	be.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	be.Start()
	defer be.Close()
	r := startZurl(t, nil)
	r.request(&zhttp.Packet{ID: "warm", Method: "GET", URI: be.URL + "/", Credits: 100, HasCredits: true, IgnorePolicies: true})
	for r.recv(200*time.Millisecond) != nil {
	}
	baseG, baseFD := runtime.NumGoroutine(), fds(t)
	const n = 300
	for i := 0; i < n; i++ {
		p := r.request(&zhttp.Packet{ID: fmt.Sprintf("r%d", i), Method: "GET", URI: be.URL + "/", Credits: 100, HasCredits: true, IgnorePolicies: true})
		if code, _, body := r.readResponse(p, p.ID, 100); code != 200 || string(body) != "ok" {
			t.Fatalf("request %d: %d %q", i, code, body)
		}
	}
	if c := conns.Load(); c > 5 {
		t.Errorf("%d backend connections for %d sequential requests: no reuse", c, n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		g, f := runtime.NumGoroutine(), fds(t)
		if g <= baseG+2 && f <= baseFD+2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines %d (base %d), fds %d (base %d)", g, baseG, f, baseFD)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func fds(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
