package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cmBackend is the origin behind the route `*,path_beg=/be`:
//
//	/be/hello     200 "hello from backend\n" with X-Backend: yes
//	/be/echo      echoes the request body (any method)
//	/be/big?n=N   N bytes, streamed without a length
//	/be/stream    Grip-Hold: stream on channel cm-stream
//	/be/poll      Grip-Hold: response on channel cm-poll, body "timeout\n"
func cmBackend(t *testing.T) int {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/be/hello":
			w.Header().Set("X-Backend", "yes")
			_, _ = io.WriteString(w, "hello from backend\n")
		case "/be/echo":
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Method", r.Method)
			_, _ = w.Write(b)
		case "/be/big":
			n, _ := strconv.Atoi(r.URL.Query().Get("n"))
			chunk := []byte(strings.Repeat("0123456789abcdef", 2048))
			for left := n; left > 0; left -= len(chunk) {
				_, _ = w.Write(chunk[:min(left, len(chunk))])
			}
		case "/be/stream":
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Grip-Hold", "stream")
			w.Header().Set("Grip-Channel", "cm-stream")
			_, _ = io.WriteString(w, "held\n")
		case "/be/poll":
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Grip-Hold", "response")
			w.Header().Set("Grip-Channel", "cm-poll")
			w.Header().Set("Grip-Timeout", "30")
			_, _ = io.WriteString(w, "timeout\n")
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().(*net.TCPAddr).Port
}

// Our connection manager in front of the real Pushpin 1.36 proxy, handler
// and zurl: proxied requests (keep-alive, request bodies both framings,
// HTTP/1.0, a large response paced by credits), the test route's stream
// hold, a backend stream hold and a response hold answered by publishes.
func TestConnMgrWithPushpin(t *testing.T) {
	needRealPushpin(t)
	t.Parallel()
	port := cmBackend(t)
	s := ourConnMgrReal.start(t, fmt.Sprintf("*,path_beg=/be 127.0.0.1:%d\n* test", port))
	s.waitReady(t, "/")
	addr := fmt.Sprintf("127.0.0.1:%d", s.HTTPPort)

	t.Run("proxied", func(t *testing.T) {
		for i := 0; i < 3; i++ { // same pooled keep-alive connection
			body, resp := get(t, s.Client, s.url("/be/hello"))
			if resp.StatusCode != 200 || body != "hello from backend\n" || resp.Header.Get("X-Backend") != "yes" {
				t.Fatalf("GET /be/hello: %d %q %v", resp.StatusCode, body, resp.Header)
			}
		}
		payload := strings.Repeat("p", 50000) // more than the 8192 initial credits
		resp, err := s.Client.Post(s.url("/be/echo"), "text/plain", strings.NewReader(payload))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != payload || resp.Header.Get("X-Method") != "POST" {
			t.Fatalf("POST echo: %d bytes, method %q", len(b), resp.Header.Get("X-Method"))
		}
		// A chunked request body, raw.
		raw := "PUT /be/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
			"5\r\nhello\r\n7\r\n chunks\r\n0\r\n\r\n"
		out := rawRequest(t, addr, []byte(raw), 10*time.Second)
		if !bytes.HasPrefix(out, []byte("HTTP/1.1 200 OK\r\n")) || !bytes.HasSuffix(out, []byte("\r\n\r\nhello chunks")) {
			t.Fatalf("chunked PUT: %q", out)
		}
		// HTTP/1.0 without keep-alive: closed after the response.
		out = rawRequest(t, addr, []byte("GET /be/hello HTTP/1.0\r\n\r\n"), 10*time.Second)
		if !bytes.HasPrefix(out, []byte("HTTP/1.0 200 OK\r\n")) || !bytes.HasSuffix(out, []byte("hello from backend\n")) {
			t.Fatalf("HTTP/1.0: %q", out)
		}
		// 1 MB: the proxy may only send what our credits allow.
		const n = 1 << 20
		resp, err = s.Client.Get(s.url(fmt.Sprintf("/be/big?n=%d", n)))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		got, _ := io.Copy(h, resp.Body)
		resp.Body.Close()
		want := sha256.New()
		chunk := []byte(strings.Repeat("0123456789abcdef", 2048))
		for left := n; left > 0; left -= len(chunk) {
			want.Write(chunk[:min(left, len(chunk))])
		}
		if got != n || !bytes.Equal(h.Sum(nil), want.Sum(nil)) {
			t.Fatalf("big response: %d bytes, hash mismatch=%v", got, !bytes.Equal(h.Sum(nil), want.Sum(nil)))
		}
	})

	t.Run("test route stream hold", func(t *testing.T) {
		st := openStreamExpect(t, s.Client, s.url("/stream"), "[stream opened]\n")
		publishUntilSeen(t, s, st, "test", "hello there\n")
	})

	t.Run("backend stream hold", func(t *testing.T) {
		st := openStreamExpect(t, s.Client, s.url("/be/stream"), "held\n")
		publishUntilSeen(t, s, st, "cm-stream", "one\n")
		s.publish(t, `{"items":[{"channel":"cm-stream","formats":{"http-stream":{"content":"two\n"}}}]}`)
		if l := st.next(t, 5*time.Second); l != "two\n" {
			t.Fatalf("got %q", l)
		}
		s.publish(t, `{"items":[{"channel":"cm-stream","formats":{"http-stream":{"action":"close"}}}]}`)
		select {
		case _, ok := <-st.lines:
			if ok {
				t.Fatal("data after close")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("stream not closed")
		}
	})

	t.Run("response hold", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		_, _ = c.Write([]byte("GET /be/poll HTTP/1.1\r\nHost: x\r\n\r\n"))
		got := make(chan *http.Response, 1)
		go func() {
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err == nil {
				got <- resp
			}
			close(got)
		}()
		item := `{"items":[{"channel":"cm-poll","formats":{"http-response":{"code":201,"reason":"Created","headers":{"X-Pub":"1"},"body":"published\n"}}}]}`
		deadline := time.After(15 * time.Second)
		for {
			select {
			case resp, ok := <-got:
				if !ok {
					t.Fatal("no response")
				}
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != 201 || string(b) != "published\n" || resp.Header.Get("X-Pub") != "1" ||
					resp.ContentLength != int64(len("published\n")) {
					t.Fatalf("held response: %d %q %v", resp.StatusCode, b, resp.Header)
				}
				return
			case <-time.After(300 * time.Millisecond):
				s.publish(t, item)
			case <-deadline:
				t.Fatal("publish never answered the held request")
			}
		}
	})
}

func get(t *testing.T, c *http.Client, url string) (string, *http.Response) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return string(b), resp
}
