package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// zurlBackend is the origin behind Pushpin for the zurl tests: it records
// what arrived through the outbound worker.
type zurlBackend struct {
	*httptest.Server
	mu      sync.Mutex
	last    http.Header
	lastLen int
	release chan struct{}
}

func newZurlBackend(t *testing.T) *zurlBackend {
	b := &zurlBackend{release: make(chan struct{})}
	b.Server = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(func() { close(b.release); b.Close() })
	return b
}

// serve ignores write errors: they mean zurl hung up, which the test's
// client side sees.
func (b *zurlBackend) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	b.mu.Lock()
	b.last, b.lastLen = r.Header.Clone(), len(body)
	b.last.Set("X-Path", r.URL.Path)
	b.mu.Unlock()
	switch r.URL.Path {
	case "/hello":
		w.Header().Set("X-Backend", "yes")
		fmt.Fprintf(w, "hello %s", r.Method)
	case "/echo":
		sum := sha256.Sum256(body)
		fmt.Fprintf(w, "%d %x", len(body), sum[:8])
	case "/big":
		chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096)
		for i := 0; i < 64; i++ { // 4 MB, chunked
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	case "/trickle":
		// Headers and a first chunk, then nothing until released: the
		// client must see the first chunk while the backend still writes.
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-b.release:
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
		_, _ = io.WriteString(w, "last\n") // the client may be gone (the context case)
	case "/gzip":
		// Compressed whatever the request offered, as some origins do.
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		_, _ = zw.Write(bytes.Repeat([]byte("gzipped line\n"), 10000))
		zw.Close()
	case "/stream":
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Grip-Hold", "stream")
		w.Header().Set("Grip-Channel", r.URL.Query().Get("ch"))
		_, _ = io.WriteString(w, "stream open\n")
	default:
		http.NotFound(w, r)
	}
}

func (b *zurlBackend) seen() (http.Header, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last.Clone(), b.lastLen
}

// Pushpin 1.36's condure, proxy and handler in front of our pushpin-zurl:
// the real proxy is the requester (zhttp client) our zurl serves.
func TestZurlBehindRealPushpin(t *testing.T) {
	if _, err := os.Stat(realProxy); err != nil {
		t.Skipf("Pushpin 1.36 not installed (%s missing)", realProxy)
	}
	tr := tiers{"pushpin+our-zurl", realCondure, realProxy, realHandler, bin("pushpin-zurl")}
	tr.needs(t)
	be := newZurlBackend(t)
	bePort := be.Listener.Addr().(*net.TCPAddr).Port
	s := tr.start(t, fmt.Sprintf("*,path_beg=/dead localhost:%d\n*,path_beg=/untrusted localhost:%d,untrusted\n* localhost:%d",
		freePort(t), bePort, bePort))
	s.waitReady(t, "/hello")

	t.Run("get", func(t *testing.T) {
		req, _ := http.NewRequest("GET", s.url("/hello"), nil)
		req.Header.Set("X-Client", "c1")
		req.Header.Set("User-Agent", "e2e-client/1")
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := s.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "hello GET" || resp.Header.Get("X-Backend") != "yes" {
			t.Fatalf("GET: %d %q %v", resp.StatusCode, body, resp.Header)
		}
		h, _ := be.seen()
		if h.Get("X-Client") != "c1" || h.Get("Grip-Sig") == "" {
			t.Fatalf("backend saw %v", h)
		}
		// The client's User-Agent passes as is (no Go UA). The proxy drops
		// the client's Accept-Encoding; zurl offers the codings it decodes.
		if h.Get("User-Agent") != "e2e-client/1" || strings.Join(h.Values("Accept-Encoding"), ",") != "gzip, deflate" {
			t.Fatalf("User-Agent %q, Accept-Encoding %q", h.Get("User-Agent"), h.Values("Accept-Encoding"))
		}
	})

	t.Run("post", func(t *testing.T) {
		resp, err := s.Client.Post(s.url("/hello"), "text/plain", strings.NewReader("abc"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "hello POST" {
			t.Fatalf("POST: %d %q", resp.StatusCode, body)
		}
		// 1 MB request body: more than one credit window of the proxy.
		big := bytes.Repeat([]byte("request body "), 80000)
		resp, err = s.Client.Post(s.url("/echo"), "application/octet-stream", bytes.NewReader(big))
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		sum := sha256.Sum256(big)
		if want := fmt.Sprintf("%d %x", len(big), sum[:8]); resp.StatusCode != 200 || string(body) != want {
			t.Fatalf("big POST: %d %q, want %q", resp.StatusCode, body, want)
		}
	})

	t.Run("big-response", func(t *testing.T) {
		resp, err := s.Client.Get(s.url("/big"))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		resp.Body.Close()
		want := sha256.Sum256(bytes.Repeat(bytes.Repeat([]byte("0123456789abcdef"), 4096), 64))
		if err != nil || n != 4<<20 || !bytes.Equal(h.Sum(nil), want[:]) {
			t.Fatalf("big response: %d bytes, %v", n, err)
		}
	})

	t.Run("streamed-response", func(t *testing.T) {
		start := time.Now()
		resp, err := s.Client.Get(s.url("/trickle"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		line, err := br.ReadString('\n')
		if err != nil || line != "first\n" {
			t.Fatalf("first line %q, %v", line, err)
		}
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Fatalf("first chunk took %v: not streamed", d)
		}
		rest, _ := io.ReadAll(br)
		if string(rest) != "last\n" {
			t.Fatalf("rest %q", rest)
		}
	})

	// The proxy strips Content-Encoding from relayed responses, so zurl must
	// hand it a decoded body (as zurl's libcurl does).
	t.Run("gzip-origin", func(t *testing.T) {
		req, _ := http.NewRequest("GET", s.url("/gzip"), nil)
		req.Header.Set("Accept-Encoding", "identity") // no transparent decoding in this client
		resp, err := s.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "" ||
			!bytes.Equal(body, bytes.Repeat([]byte("gzipped line\n"), 10000)) {
			t.Fatalf("gzip origin: %d %v, %d bytes %q…", resp.StatusCode, resp.Header, len(body), body[:min(len(body), 20)])
		}
	})

	// Our error packets drive the real proxy's failure handling: a refused
	// connection and (for an untrusted target, which does not get
	// ignore-policies) the default deny list both end in 502.
	t.Run("errors", func(t *testing.T) {
		for _, path := range []string{"/dead/x", "/untrusted/hello"} {
			resp, err := s.Client.Get(s.url(path))
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("%s: reading body: %v", path, err)
			}
			if resp.StatusCode != 502 {
				t.Fatalf("%s: %d, want 502", path, resp.StatusCode)
			}
		}
		if h, _ := be.seen(); strings.HasPrefix(h.Get("X-Path"), "/untrusted") {
			t.Fatal("a denied request reached the backend")
		}
	})

	t.Run("stream-hold-publish", func(t *testing.T) {
		st := openStreamExpect(t, s.Client, s.url("/stream?ch=zurl"), "stream open\n")
		publishUntilSeen(t, s, st, "zurl", "published\n")
		s.publish(t, `{"items":[{"channel":"zurl","formats":{"http-stream":{"action":"close"}}}]}`)
		select {
		case _, ok := <-st.lines:
			if ok {
				t.Fatal("data after close")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("stream not closed by the close action")
		}
	})
}
