package zurl

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/internal/testwait"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

func port(s *httptest.Server) int64 { return int64(s.Listener.Addr().(*net.TCPAddr).Port) }

// backendWrite writes part of a test backend's response; a failure is an
// error, as the zurl under test is expected to take all of it.
func backendWrite[T string | []byte](tb testing.TB, w io.Writer, b T) {
	tb.Helper()
	if _, err := w.Write([]byte(b)); err != nil {
		tb.Errorf("backend write: %v", err)
	}
}

// A GET through connect-host: the Host header keeps the uri's host, the
// requester's headers pass through, Go adds no User-Agent, zurl offers
// the codings it decodes, the ack is a keep-alive echoing ext.multi, and a small
// response comes whole in one packet.
func TestGet(t *testing.T) {
	t.Parallel()
	seen := make(chan http.Header, 1)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h := req.Header.Clone()
		h.Set("X-Got-Host", req.Host)
		seen <- h
		w.Header().Set("X-Backend", "yes")
		backendWrite(t, w, "hello")
	}))
	defer be.Close()
	r := startZurl(t, nil)
	ack := r.request(&zhttp.Packet{ID: "g1", Method: "GET", URI: "http://example.com/x?y=1", Credits: 1000, HasCredits: true,
		ConnectHost: "127.0.0.1", ConnectPort: port(be), IgnorePolicies: true, Ext: zhttp.Ext{Multi: true},
		Headers: zhttp.Headers{{Name: "X-Custom", Value: "a"}, {Name: "X-Custom", Value: "b"}}})
	if ack.Type != zhttp.KeepAlive || ack.Seq != 0 || !ack.Ext.Multi || ack.From != r.zid {
		t.Fatalf("ack: %+v", ack)
	}
	resp := r.must(ack.ID, 10*time.Second)
	if resp.Seq != 1 || !resp.HasCode || resp.Code != 200 || resp.Reason != "OK" || string(resp.Body) != "hello" || resp.More {
		t.Fatalf("response: %+v", resp)
	}
	if resp.Headers.Get("X-Backend") != "yes" || resp.Headers.Get("Content-Length") != "5" {
		t.Fatalf("response headers: %v", resp.Headers)
	}
	h := <-seen
	if h.Get("X-Got-Host") != "example.com" || strings.Join(h.Values("X-Custom"), ",") != "a,b" {
		t.Fatalf("backend saw %v", h)
	}
	if _, ok := h["User-Agent"]; ok {
		t.Errorf("User-Agent added: %q", h.Get("User-Agent"))
	}
	if h.Get("Accept-Encoding") != acceptEncoding {
		t.Errorf("Accept-Encoding %q, want ours (%q)", h.Get("Accept-Encoding"), acceptEncoding)
	}
	if h.Get("Accept") != "*/*" {
		t.Errorf("Accept %q, want zurl's */*", h.Get("Accept"))
	}
}

// A compressed response passes through as the backend sent it: the
// Content-Encoding header still describes the body.
func TestContentEncodingPassesThrough(t *testing.T) {
	t.Parallel()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write([]byte("compressed hello")); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Accept-Encoding") != "gzip" {
			http.Error(w, "want the client's Accept-Encoding", 400)
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		backendWrite(t, w, gz.Bytes())
	}))
	defer be.Close()
	r := startZurl(t, nil)
	p := r.request(&zhttp.Packet{ID: "gz", Method: "GET", URI: be.URL + "/", Credits: 1000, HasCredits: true, IgnorePolicies: true,
		Headers: zhttp.Headers{{Name: "Accept-Encoding", Value: "gzip"}}})
	code, hdr, body := r.readResponse(p)
	if code != 200 || hdr.Get("Content-Encoding") != "gzip" || !bytes.Equal(body, gz.Bytes()) {
		t.Fatalf("got %d %v %q", code, hdr, body)
	}
}

// Without an Accept-Encoding from the requester, zurl decodes what it
// offered (and what a backend sends regardless): the requester gets the
// plain body and no Content-Encoding or Content-Length describing the
// compressed one. Unknown codings pass through with their header.
func TestContentDecoding(t *testing.T) {
	t.Parallel()
	plain := bytes.Repeat([]byte("decoded text "), 20000) // 260 KB: several windows
	encode := map[string]func(io.Writer) io.WriteCloser{
		"gzip":     func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) },
		"deflate":  func(w io.Writer) io.WriteCloser { return zlib.NewWriter(w) },
		"rawflate": func(w io.Writer) io.WriteCloser { z, _ := flate.NewWriter(w, 5); return z },
	}
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		kind := strings.TrimPrefix(req.URL.Path, "/")
		if kind == "br" {
			w.Header().Set("Content-Encoding", "br")
			backendWrite(t, w, "not really brotli")
			return
		}
		var buf bytes.Buffer
		zw := encode[kind](&buf)
		backendWrite(t, zw, plain)
		zw.Close()
		coding := kind
		if kind == "rawflate" {
			coding = "deflate" // raw deflate data under the deflate name
		}
		w.Header().Set("Content-Encoding", coding)
		w.Header().Set("Content-Length", fmt.Sprint(buf.Len()))
		backendWrite(t, w, buf.Bytes())
	}))
	defer be.Close()
	r := startZurl(t, nil)
	for _, kind := range []string{"gzip", "deflate", "rawflate"} {
		p := r.request(&zhttp.Packet{ID: kind, Method: "GET", URI: be.URL + "/" + kind, Credits: 65536, HasCredits: true, IgnorePolicies: true})
		code, hdr, body := r.readResponse(p)
		if code != 200 || hdr.Has("Content-Encoding") || hdr.Has("Content-Length") || !bytes.Equal(body, plain) {
			t.Fatalf("%s: %d %v, %d bytes", kind, code, hdr, len(body))
		}
	}
	p := r.request(&zhttp.Packet{ID: "br", Method: "GET", URI: be.URL + "/br", Credits: 1000, HasCredits: true, IgnorePolicies: true})
	if code, hdr, body := r.readResponse(p); code != 200 || hdr.Get("Content-Encoding") != "br" || string(body) != "not really brotli" {
		t.Fatalf("br: %d %v %q", code, hdr, body)
	}
}

// A 2 MB body of unknown length streamed through a 16 KB credit window:
// zurl never has more body in flight than the requester granted, and the
// bytes arrive intact.
func TestStreamWithinCredits(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("0123456789abcdef"), 128*1024)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		for b := data; len(b) > 0; b = b[min(len(b), 100000):] {
			backendWrite(t, w, b[:min(len(b), 100000)])
			w.(http.Flusher).Flush()
		}
	}))
	defer be.Close()
	r := startZurl(t, nil)
	const window = 16 * 1024
	p := r.request(&zhttp.Packet{ID: "s1", Method: "GET", URI: be.URL + "/big", Credits: window, HasCredits: true, IgnorePolicies: true})
	id := p.ID
	outstanding := int64(window)
	h := sha256.New()
	for p.Type != zhttp.Data {
		p = r.must(id, 10*time.Second)
	}
	if !p.HasCode || !p.More {
		t.Fatalf("first packet: %+v", p)
	}
	packets := 0
	for {
		packets++
		outstanding -= int64(len(p.Body))
		if outstanding < 0 {
			t.Fatalf("zurl sent %d bytes beyond the granted credits", -outstanding)
		}
		h.Write(p.Body)
		if !p.More {
			break
		}
		if len(p.Body) > 0 {
			r.credit(id, len(p.Body))
			outstanding += int64(len(p.Body))
		}
		p = r.must(id, 10*time.Second)
	}
	want := sha256.Sum256(data)
	if !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("body corrupted")
	}
	if packets < len(data)/window {
		t.Fatalf("%d packets for %d bytes through a %d window", packets, len(data), window)
	}
}

// A POST body streamed in chunks within the credits zurl grants: zurl
// acks with buffer_size credits and re-credits what the backend consumed.
func TestPostStreamedBody(t *testing.T) {
	t.Parallel()
	got := make(chan []byte, 1)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		got <- b
		fmt.Fprintf(w, "%s %d %v", req.Method, len(b), req.TransferEncoding)
	}))
	defer be.Close()
	const bufSize = 4096
	r := startZurl(t, func(c *configs.ZurlConfig) { c.BufferSize = bufSize })
	body := bytes.Repeat([]byte("abcdefghij"), 10000) // 100 KB: 25 windows
	first := body[:1000]
	ack := r.request(&zhttp.Packet{ID: "p1", Method: "POST", URI: be.URL + "/", Credits: 1000, HasCredits: true,
		IgnorePolicies: true, More: true, Body: first})
	id := ack.ID
	if ack.Type != zhttp.Credit || ack.Credits != bufSize {
		t.Fatalf("want a credit ack of buffer_size, got %+v", ack)
	}
	credits := ack.Credits
	rest := body[len(first):]
	var resp *zhttp.Packet
	for len(rest) > 0 {
		for credits == 0 {
			p := r.must(id, 10*time.Second)
			if p.Type != zhttp.Credit {
				t.Fatalf("want credit, got %+v", p)
			}
			credits += p.Credits
		}
		n := int(min(credits, int64(len(rest)), 1500))
		r.later(&zhttp.Packet{ID: id, Body: rest[:n], More: n < len(rest)})
		credits -= int64(n)
		rest = rest[n:]
	}
	for resp == nil {
		p := r.must(id, 10*time.Second)
		if p.Type == zhttp.Data {
			resp = p
		}
	}
	code, _, b := r.readResponse(resp)
	if code != 200 || string(b) != "POST 100000 [chunked]" {
		t.Fatalf("got %d %q", code, b)
	}
	if !bytes.Equal(<-got, body) {
		t.Fatal("backend got a different body")
	}
}

// A declared Content-Length goes to the backend as is.
func TestPostContentLength(t *testing.T) {
	t.Parallel()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		fmt.Fprintf(w, "%d %d %q", req.ContentLength, len(b), b)
	}))
	defer be.Close()
	r := startZurl(t, nil)
	ack := r.request(&zhttp.Packet{ID: "cl", Method: "PUT", URI: be.URL + "/", Credits: 1000, HasCredits: true,
		IgnorePolicies: true, More: true, Body: []byte("abc"), Headers: zhttp.Headers{{Name: "Content-Length", Value: "6"}}})
	r.later(&zhttp.Packet{ID: ack.ID, Body: []byte("def")})
	p := r.must(ack.ID, 10*time.Second)
	for p.Type == zhttp.Credit {
		p = r.must(ack.ID, 10*time.Second)
	}
	if code, _, b := r.readResponse(p); code != 200 || string(b) != `6 6 "abcdef"` {
		t.Fatalf("got %d %q", code, b)
	}
	// A body complete in the first packet goes with its length, not
	// chunked, and needs no credits back.
	ack = r.request(&zhttp.Packet{ID: "whole", Method: "POST", URI: be.URL + "/", Credits: 1000, HasCredits: true,
		IgnorePolicies: true, Body: []byte("whole body")})
	if ack.Type != zhttp.KeepAlive {
		t.Fatalf("ack: %+v", ack)
	}
	p = r.must(ack.ID, 10*time.Second)
	if p.Type != zhttp.Data || p.Seq != 1 {
		t.Fatalf("want the response next, got %+v", p)
	}
	if code, _, b := r.readResponse(p); code != 200 || string(b) != `10 10 "whole body"` {
		t.Fatalf("got %d %q", code, b)
	}
}

func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	r := startZurl(t, nil)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().String()
	l.Close()
	p := r.request(&zhttp.Packet{ID: "e1", Method: "GET", URI: "http://" + closed + "/", Credits: 100, HasCredits: true, IgnorePolicies: true})
	if p.Type != zhttp.KeepAlive || p.Seq != 0 {
		t.Fatalf("ack: %+v", p)
	}
	p = r.must(p.ID, 10*time.Second)
	if p.Type != zhttp.Error || p.Condition != "remote-connection-failed" || p.Seq != 1 {
		t.Fatalf("refused: %+v", p)
	}
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	r := startZurl(t, nil)
	r.request(&zhttp.Packet{ID: "warm", Method: "GET", URI: "http://10.0.0.1/", Credits: 100, HasCredits: true})
	for i, q := range []*zhttp.Packet{
		{From: "proxy", ID: "b1", HasSeq: true, Method: "GET", URI: "http://x/"},                                     // no stream
		{From: "proxy", ID: "b2", HasSeq: true, Seq: 3, Stream: true, Method: "GET", URI: "http://x/"},               // seq not 0
		{From: "proxy", ID: "b3", HasSeq: true, Stream: true, Method: "GET", URI: "ftp://x/"},                        // scheme
		{From: "proxy", ID: "b4", HasSeq: true, Seq: 1, URI: "ws://x/", IgnorePolicies: true},                        // zws, seq not 0
		{From: "proxy", ID: "b5", HasSeq: true, Stream: true, Method: "GET", URI: "/relative", IgnorePolicies: true}, // relative
	} {
		if err := r.push.Send(q.AppendMessage(nil)); err != nil {
			t.Fatal(err)
		}
		p := r.must(q.ID, 10*time.Second)
		if p.Type != zhttp.Error || p.Condition != "bad-request" || p.Seq != 0 {
			t.Fatalf("%d: %+v", i, p)
		}
	}
	// Garbage and packets without from are dropped; zurl keeps serving.
	for _, m := range [][]byte{[]byte("Tnot a tnetstring"), (&zhttp.Packet{ID: "nofrom", Stream: true, URI: "http://x/"}).AppendMessage(nil)} {
		if err := r.push.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	p := r.request(&zhttp.Packet{ID: "after", Method: "GET", URI: "http://10.0.0.1/", Credits: 100, HasCredits: true})
	if p.Condition != "policy-violation" {
		t.Fatalf("after garbage: %+v", p)
	}
}

// Cancel mid-response aborts the backend request, and zurl sends nothing
// more for the session.
func TestCancel(t *testing.T) {
	t.Parallel()
	var gone atomic.Bool
	release := make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		backendWrite(t, w, "start")
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
	id := p.ID
	for len(p.Body) == 0 {
		p = r.must(id, 10*time.Second)
	}
	r.later(&zhttp.Packet{ID: id, Type: zhttp.Cancel})
	testwait.For(t, 10*time.Second, func() error {
		if !gone.Load() {
			return fmt.Errorf("backend request not aborted by cancel")
		}
		return nil
	})
	testwait.For(t, 5*time.Second, func() error {
		if n := r.srv.Open(); n != 0 {
			return fmt.Errorf("%d sessions still open: %s", n, stacks())
		}
		return nil
	})
	for q := r.recvFor(id, 300*time.Millisecond); q != nil; q = r.recvFor(id, 300*time.Millisecond) {
		if len(q.Body) > 0 || q.Type != zhttp.Data {
			t.Fatalf("packet after cancel: %+v", q)
		}
	}
}

// A packet out of sequence makes zurl cancel the session and the backend
// request; body for an unknown session is answered with cancel.
func TestSeqGapCancels(t *testing.T) {
	t.Parallel()
	var gone atomic.Bool
	release := make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.WriteHeader(200)
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
	p := r.request(&zhttp.Packet{ID: "q1", Method: "GET", URI: be.URL + "/", Credits: 100, HasCredits: true, IgnorePolicies: true})
	id := p.ID
	head := r.must(id, 10*time.Second)
	if !head.HasCode || !head.More {
		t.Fatalf("head: %+v", head)
	}
	r.raw(&zhttp.Packet{From: "proxy", ID: id, HasSeq: true, Seq: 5, Type: zhttp.Credit, Credits: 10, HasCredits: true})
	c := r.must(id, 10*time.Second)
	if c.Type != zhttp.Cancel || c.Seq != head.Seq+1 {
		t.Fatalf("want cancel, got %+v", c)
	}
	testwait.For(t, 10*time.Second, func() error {
		if !gone.Load() {
			return fmt.Errorf("backend request not aborted")
		}
		return nil
	})
	r.raw(&zhttp.Packet{From: "proxy", ID: "nosuch", HasSeq: true, Seq: 1, Body: []byte("x")})
	if c := r.must("nosuch", 10*time.Second); c.Type != zhttp.Cancel {
		t.Fatalf("unknown session: %+v", c)
	}
}

// Backend connections are reused across requests, and goroutines and fds
// come back to their baseline after 1,000 requests.
func TestReuseAndNoLeaks(t *testing.T) {
	var conns atomic.Int64
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/post" {
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				t.Error(err)
			}
		}
		backendWrite(t, w, "ok")
	}))
	be.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	be.Start()
	defer be.Close()
	r := startZurl(t, nil)
	warm := r.request(&zhttp.Packet{ID: "warm", Method: "GET", URI: be.URL + "/", Credits: 100, HasCredits: true, IgnorePolicies: true})
	r.readResponse(warm)
	testwait.For(t, 5*time.Second, func() error {
		if r.srv.Open() != 0 {
			return fmt.Errorf("warm-up session still open")
		}
		return nil
	})
	baseG, baseFD := runtime.NumGoroutine(), fds(t)
	const n = 1000
	for i := 0; i < n; i++ {
		req := &zhttp.Packet{ID: fmt.Sprintf("r%d", i), Method: "GET", URI: be.URL + "/", Credits: 100, HasCredits: true, IgnorePolicies: true}
		if i%2 == 1 {
			req.Method, req.URI, req.Body = "POST", be.URL+"/post", []byte("some body")
		}
		p := r.request(req)
		if code, _, body := r.readResponse(p); code != 200 || string(body) != "ok" {
			t.Fatalf("request %d: %d %q", i, code, body)
		}
	}
	if c := conns.Load(); c > 3 {
		t.Errorf("%d backend connections for %d sequential requests: no reuse", c, n)
	}
	testwait.For(t, 10*time.Second, func() error {
		g, f := runtime.NumGoroutine(), fds(t)
		if g <= baseG+2 && f <= baseFD+2 && r.srv.Open() == 0 {
			return nil
		}
		return fmt.Errorf("goroutines %d (base %d), fds %d (base %d), open %d", g, baseG, f, baseFD, r.srv.Open())
	})
}

// stacks returns the goroutine dump, for failures about hanging sessions.
func stacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}
