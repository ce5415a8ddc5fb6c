package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseKeepAliveResponse(t *testing.T) {
	cl := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
	ch := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nhel\r\n2\r\nlo\r\n0\r\nT: v\r\n\r\n"
	cases := []struct {
		in         string
		used, code int
		err        error
	}{
		{cl, len(cl), 200, nil},
		{cl + "HTTP/1.1", len(cl), 200, nil}, // a pipelined next response is left alone
		{cl[:len(cl)-1], 0, 0, nil},
		{ch, len(ch), 200, nil},
		{ch[:len(ch)-2], 0, 0, nil},
		{"HTTP/1.1 204 No Content\r\n\r\n", 27, 204, nil},
		{"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 45, 404, nil},
		{"HTTP/1.0 200\r\ncontent-length: 1\r\n\r\nx", 36, 200, nil},
		{"HTTP/1.1 200 OK\r\n\r\nbody until close", 0, 0, errRespClose},
		{"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, 0, errRespLength},
		{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 0, 0, errRespLength},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 0, 0, errRespHead},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, 0, errRespChunk},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n", 0, 0, errRespChunk},
		{"HTTP/1.1 2x0 OK\r\n\r\n", 0, 0, errRespHead},
		{"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", 0, 0, errRespHead},
		{"SSH-2.0\r\n\r\n", 0, 0, errRespHead},
	}
	for _, c := range cases {
		used, code, err := parseKeepAliveResponse([]byte(c.in))
		if used != c.used || code != c.code || err != c.err {
			t.Errorf("%q: got %d %d %v, want %d %d %v", c.in, used, code, err, c.used, c.code, c.err)
		}
	}
	// Every split of a whole response is incomplete until its last byte.
	for _, whole := range []string{cl, ch} {
		for i := 1; i < len(whole); i++ {
			if used, _, err := parseKeepAliveResponse([]byte(whole[:i])); used != 0 || err != nil {
				t.Fatalf("%q cut at %d: used %d, %v", whole, i, used, err)
			}
		}
	}
}

// The parser agrees with net/http on every response net/http reads whole
// with a length: same status, same end of the response.
func FuzzParseKeepAliveResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n0\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 304 Not Modified\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		used, code, err := parseKeepAliveResponse(b)
		if used < 0 || used > len(b) {
			t.Fatalf("used %d of %d", used, len(b))
		}
		if err != nil || used == 0 {
			return
		}
		r := bufio.NewReader(bytes.NewReader(b))
		resp, herr := http.ReadResponse(r, &http.Request{Method: "GET"})
		if herr != nil {
			return // net/http is stricter about some heads; only agreement on what both accept is checked
		}
		_, berr := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if berr != nil || resp.Close {
			return
		}
		if resp.StatusCode != code {
			t.Fatalf("status %d, net/http %d", code, resp.StatusCode)
		}
		if rest := r.Buffered(); len(b)-rest != used {
			t.Fatalf("used %d, net/http %d", used, len(b)-rest)
		}
	})
}

// The load keeps conc keep-alive connections busy against a real server,
// counts every answer, and reports errors for bad answers without stopping.
func TestLoadGET(t *testing.T) {
	var n, conns atomic.Int64
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1)%50 == 0 {
				w.WriteHeader(503)
				return
			}
			// Unchecked writes: the load client under test counts what arrives
			// (and srv.Close does not wait for handlers, so no t.Error here).
			if r.URL.Path == "/chunked" {
				_, _ = w.Write([]byte("a"))
				w.(http.Flusher).Flush()
			}
			_, _ = w.Write([]byte("ok\n"))
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }() // ends with ErrServerClosed; a failure shows as failed requests
	defer srv.Close()
	for _, path := range []string{"/plain", "/chunked"} {
		n.Store(0)
		conns.Store(0)
		res := loadGET(context.Background(), fmt.Sprintf("http://%s%s", ln.Addr(), path), 8, 300*time.Millisecond)
		if res.OK < 100 || res.Errors == 0 || len(res.Lat) != res.OK || res.Elapsed <= 0 {
			t.Fatalf("%s: %d ok, %d errors (%v), %d latencies, %v", path, res.OK, res.Errors, res.FirstErr, len(res.Lat), res.Elapsed)
		}
		if _, ok := res.FirstErr.(statusError); !ok {
			t.Fatalf("%s: first error %v, want the 503", path, res.FirstErr)
		}
		if c := conns.Load(); c != 8 {
			t.Fatalf("%s: %d connections, want 8 kept alive", path, c)
		}
		// Every answer the server gave but the last round was counted.
		if got := int64(res.OK + res.Errors); got > n.Load() || got < n.Load()/2 {
			t.Fatalf("%s: counted %d of %d answers", path, got, n.Load())
		}
	}
}
