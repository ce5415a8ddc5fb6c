package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushpin-go/pushpin/internal/testwait"
	"github.com/pushpin-go/pushpin/proto/grip"
)

// recordingBackend is an origin server that remembers the headers of the
// last request per path.
type recordingBackend struct {
	mu   sync.Mutex
	seen map[string]http.Header
	srv  *httptest.Server
}

func newRecordingBackend(t *testing.T) *recordingBackend {
	b := &recordingBackend{seen: map[string]http.Header{}}
	big := bytes.Repeat([]byte("0123456789abcdef"), 2<<20/16) // 2 MiB
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		h := r.Header.Clone()
		h.Set("X-Seen-Host", r.Host)
		b.seen[r.URL.Path] = h
		b.mu.Unlock()
		switch r.URL.Path {
		case "/big":
			w.Header().Set("Content-Type", "application/octet-stream")
			for i := 0; i < len(big); i += 64 << 10 {
				_, _ = w.Write(big[i : i+64<<10])
				w.(http.Flusher).Flush()
			}
		case "/echo":
			sum := sha256.Sum256(body)
			fmt.Fprintf(w, "%s %d %s", r.Method, len(body), hex.EncodeToString(sum[:]))
		default:
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("X-Backend", "1")
			fmt.Fprintf(w, "hello from backend %s\n", r.URL.Path)
		}
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *recordingBackend) headers(path string) http.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seen[path]
}

func (b *recordingBackend) addr() string { return strings.TrimPrefix(b.srv.URL, "http://") }

// startOurProxyStack runs real condure, zurl and handler around our proxy.
func startOurProxyStack(t *testing.T, routes string, confEdit func(string) string) *stack {
	t.Helper()
	s := newStack(t, routes)
	s.write(t)
	if confEdit != nil {
		b, err := os.ReadFile(s.Conf)
		if err != nil {
			t.Fatal(err)
		}
		mustWrite(t, s.Conf, confEdit(string(b)))
	}
	s.startZurl(t, realZurl)
	s.startHandler(t, realHandler)
	startProc(t, "pushpin-proxy", bin("pushpin-proxy"), "--config="+s.Conf, "--ipc-prefix=pushpin-", "--loglevel=3")
	s.startConnMgr(t, realCondure)
	return s
}

func getOK(c *http.Client, url string) (string, *http.Response, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp, err
}

// TestOurProxyWithRealPushpin proves the proxy's wire compatibility with
// Pushpin 1.36's condure, zurl and handler.
func TestOurProxyWithRealPushpin(t *testing.T) {
	needRealPushpin(t)
	t.Parallel()
	be := newRecordingBackend(t)
	s := startOurProxyStack(t, "* "+be.addr(), func(c string) string {
		return strings.Replace(c, "x_forwarded_for=\n", "x_forwarded_for=truncate:0,append\n", 1)
	})
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	testwait.For(t, 15*time.Second, func() error {
		body, resp, err := getOK(c, s.url("/ready"))
		if err != nil {
			return err
		}
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d %q", resp.StatusCode, body)
		}
		return nil
	})

	t.Run("get", func(t *testing.T) {
		req, _ := http.NewRequest("GET", s.url("/hello?x=1"), nil)
		req.Header.Set("X-Forwarded-For", "1.2.3.4")
		req.Header.Set("Grip-Sig", "forged")
		req.Header.Set("X-Custom", "kept")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "hello from backend /hello\n" || resp.Header.Get("X-Backend") != "1" {
			t.Fatalf("response %d %q %v", resp.StatusCode, body, resp.Header)
		}
		h := be.headers("/hello")
		key, _ := grip.ParseKey("changeme", "")
		if err := key.Verify(h.Get("Grip-Sig"), time.Now()); err != nil {
			t.Errorf("Grip-Sig %q: %v", h.Get("Grip-Sig"), err)
		}
		if got := h.Get("Grip-Feature"); got != grip.Feature {
			t.Errorf("Grip-Feature %q", got)
		}
		if got := h.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.1" {
			t.Errorf("X-Forwarded-For %q (truncate:0,append)", got)
		}
		if h.Get("X-Custom") != "kept" || h.Get("X-Seen-Host") != fmt.Sprintf("127.0.0.1:%d", s.HTTPPort) {
			t.Errorf("headers %v", h)
		}
	})

	t.Run("post", func(t *testing.T) {
		payload := bytes.Repeat([]byte("post-body-"), 30000) // 300 kB: several credit rounds
		resp, err := c.Post(s.url("/echo"), "application/octet-stream", bytes.NewReader(payload))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		sum := sha256.Sum256(payload)
		want := fmt.Sprintf("POST %d %s", len(payload), hex.EncodeToString(sum[:]))
		if resp.StatusCode != 200 || string(body) != want {
			t.Fatalf("got %d %q want %q", resp.StatusCode, body, want)
		}
	})

	t.Run("stream-2MB", func(t *testing.T) {
		body, resp, err := getOK(c, s.url("/big"))
		if err != nil {
			t.Fatal(err)
		}
		want := strings.Repeat("0123456789abcdef", 2<<20/16)
		if resp.StatusCode != 200 || len(body) != len(want) || body != want {
			t.Fatalf("status %d, %d bytes (want %d)", resp.StatusCode, len(body), len(want))
		}
	})

	t.Run("routes-reload", func(t *testing.T) {
		mustWrite(t, filepath.Join(s.Dir, "routes"), "* test\n")
		testwait.For(t, 10*time.Second, func() error {
			body, _, err := getOK(c, s.url("/"))
			if err != nil {
				return err
			}
			if body != "Hello from the Pushpin test handler!\n" {
				return fmt.Errorf("body %q", body)
			}
			return nil
		})
		body, resp, err := getOK(c, s.url("/nope"))
		if err != nil || resp.StatusCode != 404 || body != "no such test resource\n" {
			t.Fatalf("test route 404: %v %q", err, body)
		}
		mustWrite(t, filepath.Join(s.Dir, "routes"), "other.example "+be.addr()+"\n")
		testwait.For(t, 10*time.Second, func() error {
			body, resp, err := getOK(c, s.url("/"))
			if err != nil {
				return err
			}
			if resp.StatusCode != 502 || body != "No route for host: 127.0.0.1\n" {
				return fmt.Errorf("%d %q", resp.StatusCode, body)
			}
			return nil
		})
	})
}
