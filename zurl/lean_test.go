package zurl

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// rawBackend is a TCP server whose every exchange the test writes by hand,
// to check the lean client against the HTTP/1.1 cases net/http's Transport
// handles: interim 1xx, chunked bodies, Connection: close, HEAD, and idle
// connections the server closes.
type rawBackend struct {
	ln    net.Listener
	conns atomic.Int64
	wg    sync.WaitGroup
}

// startRaw serves each connection with serve, which reads requests from br
// and writes replies to c; it returns to close the connection.
func startRaw(t *testing.T, serve func(c net.Conn, br *bufio.Reader)) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &rawBackend{ln: ln}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.conns.Add(1)
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				defer c.Close()
				serve(c, bufio.NewReader(c))
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); b.wg.Wait() })
	return b
}

func (b *rawBackend) url(path string) string { return "http://" + b.ln.Addr().String() + path }

func get(t *testing.T, r *requester, id, method, uri string) (int64, zhttp.Headers, string) {
	t.Helper()
	p := r.request(&zhttp.Packet{ID: id, Method: method, URI: uri, Credits: 100000, HasCredits: true, IgnorePolicies: true})
	code, h, body := r.readResponse(p)
	return code, h, string(body)
}

func TestLeanHTTP1Cases(t *testing.T) {
	t.Parallel()
	be := startRaw(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				t.Error(err)
				return
			}
			switch req.URL.Path {
			case "/interim":
				backendWrite(t, c, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"+
					"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal")
			case "/chunked":
				backendWrite(t, c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")
			case "/head":
				backendWrite(t, c, "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
			case "/close":
				backendWrite(t, c, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close")
				return
			default:
				backendWrite(t, c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}
		}
	})
	r := startZurl(t, nil)
	for i, c := range []struct{ method, path, body string }{
		{"GET", "/interim", "final"},
		{"GET", "/chunked", "abcdefg"},
		{"HEAD", "/head", ""},
		{"GET", "/plain", "ok"},
	} {
		if code, _, body := get(t, r, fmt.Sprint("c", i), c.method, be.url(c.path)); code != 200 || body != c.body {
			t.Fatalf("%s %s: %d %q, want %q", c.method, c.path, code, body, c.body)
		}
	}
	if n := be.conns.Load(); n != 1 {
		t.Fatalf("%d connections for keep-alive exchanges, want 1", n)
	}
	// A close-delimited response ends the connection; the next request
	// needs a new one.
	for i, path := range []string{"/close", "/plain"} {
		want := map[string]string{"/close": "until close", "/plain": "ok"}[path]
		if code, _, body := get(t, r, fmt.Sprint("k", i), "GET", be.url(path)); code != 200 || body != want {
			t.Fatalf("%s: %d %q", path, code, body)
		}
	}
	if n := be.conns.Load(); n != 2 {
		t.Fatalf("%d connections after Connection: close, want 2", n)
	}
}

// A server that closes keep-alive connections after each response without
// saying so (as one whose idle timeout passed): every request still gets
// its answer, on a new connection, whether the close is seen before reuse
// or only when the reused connection fails.
func TestLeanStaleConnection(t *testing.T) {
	t.Parallel()
	var served atomic.Int64
	be := startRaw(t, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			t.Error(err)
			return
		}
		served.Add(1)
		backendWrite(t, c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		if req.URL.Path == "/late" {
			// Close only once the next request is (probably) under way.
			if err := c.SetReadDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
				t.Error(err)
			}
			_, _ = br.Peek(1) // only waits: for the next request or the deadline
		}
	})
	r := startZurl(t, nil)
	for i := 0; i < 6; i++ {
		path := "/now"
		if i%2 == 1 {
			path = "/late"
		}
		if code, _, body := get(t, r, fmt.Sprint("s", i), "GET", be.url(path)); code != 200 || body != "ok" {
			t.Fatalf("request %d (%s): %d %q", i, path, code, body)
		}
		time.Sleep(20 * time.Millisecond) // let the close arrive before the next request
	}
	if served.Load() != 6 {
		t.Fatalf("backend served %d of 6", served.Load())
	}
	// A POST goes on a new connection when the close was seen before
	// reuse, but is not replayed once it went out on a connection that
	// then failed (net/http's rule): that one ends in an error.
	post := func(id string) *zhttp.Packet {
		p := r.request(&zhttp.Packet{ID: id, Method: "POST", URI: be.url("/late"), Credits: 1000, HasCredits: true,
			IgnorePolicies: true, Body: []byte("data")})
		for p.Type == zhttp.KeepAlive {
			p = r.must(id, 10*time.Second)
		}
		return p
	}
	time.Sleep(300 * time.Millisecond) // the last /late connection is closed by now
	if p := post("p1"); p.Code != 200 || string(p.Body) != "ok" {
		t.Fatalf("post on a new connection: %+v", p)
	}
	if p := post("p2"); p.Type != zhttp.Error {
		t.Fatalf("post on a connection that failed after sending: %+v", p)
	}
	if served.Load() != 7 {
		t.Fatalf("backend served %d, want 7", served.Load())
	}
}

// The request the lean client writes: net/http's names, values, defaults
// and Content-Length rule, in the requester's header order; hop-by-hop
// headers dropped, the first non-empty User-Agent kept.
func TestLeanRequestBytes(t *testing.T) {
	t.Parallel()
	heads := make(chan string, 4)
	be := startRaw(t, func(c net.Conn, br *bufio.Reader) {
		for {
			var head strings.Builder
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				head.WriteString(line)
				if line == "\r\n" {
					break
				}
			}
			h := head.String()
			if i := strings.Index(h, "Content-Length: "); i >= 0 {
				var n int
				if _, err := fmt.Sscanf(h[i+len("Content-Length: "):], "%d", &n); err != nil {
					t.Errorf("content-length in %q: %v", h, err)
					return
				}
				b := make([]byte, n)
				if _, err := io.ReadFull(br, b); err != nil {
					t.Errorf("body: %v", err)
					return
				}
				h += string(b)
			}
			heads <- h
			if strings.HasPrefix(h, "HEAD ") {
				backendWrite(t, c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
				continue
			}
			backendWrite(t, c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	r := startZurl(t, nil)
	send := func(id, method, path string, h zhttp.Headers, body string) string {
		p := r.request(&zhttp.Packet{ID: id, Method: method, URI: "http://example.com:8080" + path, Credits: 100, HasCredits: true,
			IgnorePolicies: true, ConnectHost: "127.0.0.1", ConnectPort: port2(be), Headers: h, Body: []byte(body)})
		if code, _, b := r.readResponse(p); code != 200 || (string(b) != "ok" && method != "HEAD") {
			t.Fatalf("%s: %d %q", id, code, b)
		}
		return <-heads
	}
	got := send("g", "GET", "/a%20b?q=1&r", zhttp.Headers{{Name: "Host", Value: "ignored"}, {Name: "x-b", Value: " 2 "}, {Name: "X-A", Value: "1"}, {Name: "Connection", Value: "keep-alive"},
		{Name: "user-agent", Value: "ua"}, {Name: "User-Agent", Value: "second"}, {Name: "Accept-Encoding", Value: "br"}, {Name: "X-A", Value: "again"}}, "")
	want := "GET /a%20b?q=1&r HTTP/1.1\r\nHost: example.com:8080\r\nX-B: 2\r\nX-A: 1\r\nUser-Agent: ua\r\n" +
		"Accept-Encoding: br\r\nX-A: again\r\nAccept: */*\r\n\r\n"
	if got != want {
		t.Errorf("GET:\n got %q\nwant %q", got, want)
	}
	got = send("p", "POST", "/", zhttp.Headers{{Name: "Content-Type", Value: "text/plain"}, {Name: "Content-Length", Value: "5"}}, "hello")
	want = "POST / HTTP/1.1\r\nHost: example.com:8080\r\nContent-Type: text/plain\r\nAccept: */*\r\n" +
		"Accept-Encoding: gzip, deflate\r\nContent-Length: 5\r\n\r\nhello"
	if got != want {
		t.Errorf("POST:\n got %q\nwant %q", got, want)
	}
	for _, c := range []struct{ method, cl string }{{"POST", "Content-Length: 0\r\n"}, {"DELETE", ""}, {"HEAD", ""}} {
		got = send(c.method, c.method, "/", nil, "")
		want = c.method + " / HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate\r\n" + c.cl + "\r\n"
		if got != want {
			t.Errorf("%s:\n got %q\nwant %q", c.method, got, want)
		}
	}
	// A value net/http refuses still ends in an error (it takes such requests).
	p := r.request(&zhttp.Packet{ID: "bad", Method: "GET", URI: be.url("/"), Credits: 100, HasCredits: true, IgnorePolicies: true,
		Headers: zhttp.Headers{{Name: "X-Bad", Value: "a\nb"}}})
	for p.Type == zhttp.KeepAlive {
		p = r.must("bad", 10*time.Second)
	}
	if p.Type != zhttp.Error {
		t.Fatalf("invalid header value: %+v", p)
	}
}

func port2(b *rawBackend) int64 { return int64(b.ln.Addr().(*net.TCPAddr).Port) }
