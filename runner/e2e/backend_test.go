package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// gripBackend is a small origin server speaking GRIP, like a user's app:
//
//	/stream?ch=C    Grip-Hold: stream, body "stream open\n"
//	/sse?ch=C       stream hold as text/event-stream
//	/poll?ch=C&t=N  Grip-Hold: response, Grip-Timeout N, body "timeout\n"
//	/plain          200 "plain response\n" (also echoes the request body)
//	/big?n=N        N bytes streamed in 32 KB writes, no GRIP
//
// It records the headers of the last request it received.
type gripBackend struct {
	*httptest.Server
	mu   sync.Mutex
	last http.Header
	hits map[string]int
}

func newGripBackend(t *testing.T) *gripBackend {
	t.Helper()
	b := &gripBackend{hits: map[string]int{}}
	b.Server = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.Close)
	return b
}

// port returns the backend's TCP port (for routes lines).
func (b *gripBackend) port() int { return b.Listener.Addr().(*net.TCPAddr).Port }

func (b *gripBackend) lastHeaders() http.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last.Clone()
}

// serve ignores write errors: they mean the proxy hung up, which the test's
// client side sees.
func (b *gripBackend) serve(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.last = r.Header.Clone()
	b.last.Set("Host", r.Host)
	b.hits[r.URL.Path]++
	b.mu.Unlock()
	ch := r.URL.Query().Get("ch")
	if ch == "" {
		ch = "test"
	}
	switch r.URL.Path {
	case "/stream":
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Grip-Hold", "stream")
		w.Header().Set("Grip-Channel", ch)
		_, _ = io.WriteString(w, "stream open\n")
	case "/sse":
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Grip-Hold", "stream")
		w.Header().Set("Grip-Channel", ch)
		w.Header().Set("Grip-Keep-Alive", `:\n\n; format=cstring; timeout=20`)
		_, _ = io.WriteString(w, "event: open\ndata: {}\n\n")
	case "/poll":
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Grip-Hold", "response")
		w.Header().Set("Grip-Channel", ch)
		if t := r.URL.Query().Get("t"); t != "" {
			w.Header().Set("Grip-Timeout", t)
		}
		_, _ = io.WriteString(w, "timeout\n")
	case "/plain":
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Backend", "yes")
		fmt.Fprintf(w, "plain response\n%s", body)
	case "/big":
		var n int
		if _, err := fmt.Sscan(r.URL.Query().Get("n"), &n); err != nil {
			http.Error(w, "n: "+err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		chunk := []byte(strings.Repeat("0123456789abcdef", 2048))
		for n > 0 {
			c := chunk
			if n < len(c) {
				c = c[:n]
			}
			if _, err := w.Write(c); err != nil {
				return
			}
			n -= len(c)
		}
	default:
		http.NotFound(w, r)
	}
}
