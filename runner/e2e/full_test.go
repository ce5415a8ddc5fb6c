package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The same scenarios run against several tier combinations: all ours, the
// real condure in front of our proxy/handler/zurl, our connection manager in
// front of Pushpin's proxy/handler/zurl, and Pushpin 1.36 alone as the
// reference the scenarios are checked against.
var (
	allOurs = tiers{"ours", bin("pushpin-connmgr"), bin("pushpin-proxy"), bin("pushpin-handler"), bin("pushpin-zurl")}
	// (a) the real condure in front of our proxy, handler and zurl.
	realCondureOurs = tiers{"condure+ours", realCondure, bin("pushpin-proxy"), bin("pushpin-handler"), bin("pushpin-zurl")}
	// Our proxy and handler between the real condure and the real zurl.
	realEdgesOurs = tiers{"condure+ours+zurl", realCondure, bin("pushpin-proxy"), bin("pushpin-handler"), realZurl}
	// (b) our connection manager in front of Pushpin's proxy, handler and zurl.
	ourConnMgrReal = tiers{"connmgr+pushpin", bin("pushpin-connmgr"), realProxy, realHandler, realZurl}
)

func (tr tiers) needs(t *testing.T) {
	t.Helper()
	for _, p := range []string{tr.connmgr, tr.proxy, tr.handler, tr.zurl} {
		if strings.HasPrefix(p, "/usr/bin/") {
			needRealPushpin(t)
		}
	}
}

// forEachStack runs fn as a parallel subtest per tier combination.
func forEachStack(t *testing.T, fn func(t *testing.T, tr tiers), stacks ...tiers) {
	for _, tr := range stacks {
		tr := tr
		t.Run(tr.name, func(t *testing.T) {
			tr.needs(t)
			t.Parallel()
			fn(t, tr)
		})
	}
}

var interopStacks = []tiers{allOurs, realCondureOurs, realEdgesOurs, ourConnMgrReal}

func TestTestRoute(t *testing.T) {
	forEachStack(t, scenarioTestRoute, append(interopStacks, allReal)...)
}

// Proxied requests: GET and POST bodies reach the backend with Pushpin's
// header rules, and a large response streams through intact.
func TestProxiedRequests(t *testing.T) {
	forEachStack(t, func(t *testing.T, tr tiers) {
		be := newGripBackend(t)
		s := tr.start(t, fmt.Sprintf("* localhost:%d", be.port()))
		s.waitReady(t, "/plain")
		resp, err := s.Client.Post(s.url("/plain"), "text/plain", strings.NewReader("posted body"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "plain response\nposted body" || resp.Header.Get("X-Backend") != "yes" {
			t.Fatalf("POST /plain: %d %q %v", resp.StatusCode, body, resp.Header)
		}
		h := be.lastHeaders()
		if h.Get("Grip-Sig") == "" || h.Get("Grip-Feature") == "" {
			t.Fatalf("backend did not get Grip-Sig/Grip-Feature: %v", h)
		}
		// A client's own Grip-* headers never reach the backend.
		req, _ := http.NewRequest("GET", s.url("/plain"), nil)
		req.Header.Set("Grip-Hold", "stream")
		resp, err = s.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if be.lastHeaders().Get("Grip-Hold") != "" {
			t.Fatal("client Grip-Hold header was forwarded")
		}
		// 3 MB streamed response, checked by hash.
		const n = 3 << 20
		resp, err = s.Client.Get(s.url(fmt.Sprintf("/big?n=%d", n)))
		if err != nil {
			t.Fatal(err)
		}
		hs := sha256.New()
		got, err := io.Copy(hs, resp.Body)
		resp.Body.Close()
		if err != nil || got != n {
			t.Fatalf("big response: %d bytes, %v", got, err)
		}
		want := sha256.New()
		chunk := []byte(strings.Repeat("0123456789abcdef", 2048))
		for left := n; left > 0; left -= len(chunk) {
			want.Write(chunk[:min(left, len(chunk))])
		}
		if !bytes.Equal(hs.Sum(nil), want.Sum(nil)) {
			t.Fatal("big response corrupted")
		}
	}, append(interopStacks, allReal)...)
}

// The README walkthrough: a backend holds a stream, a publish appears in it.
func TestStreamHoldPublish(t *testing.T) {
	forEachStack(t, func(t *testing.T, tr tiers) {
		be := newGripBackend(t)
		s := tr.start(t, fmt.Sprintf("* localhost:%d", be.port()))
		s.waitReady(t, "/plain")
		st := openStreamExpect(t, s.Client, s.url("/stream?ch=test"), "stream open\n")
		if te := st.resp.TransferEncoding; len(te) == 0 || te[0] != "chunked" {
			t.Errorf("stream hold not chunked: %v", st.resp.TransferEncoding)
		}
		publishUntilSeen(t, s, st, "test", "hello there\n")
		s.publish(t, `{"items":[{"channel":"test","formats":{"http-stream":{"content":"second\n"}}}]}`)
		if l := st.next(t, 5*time.Second); l != "second\n" {
			t.Fatalf("got %q", l)
		}
		s.publish(t, `{"items":[{"channel":"test","formats":{"http-stream":{"action":"close"}}}]}`)
		select {
		case _, ok := <-st.lines:
			if ok {
				t.Fatal("data after close")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("stream not closed by the close action")
		}
	}, append(interopStacks, allReal)...)
}

// publishUntilSeen publishes content until the stream shows it: the
// subscription is registered asynchronously after the hold starts.
func publishUntilSeen(t *testing.T, s *stack, st *streamReader, channel, content string) {
	t.Helper()
	item := fmt.Sprintf(`{"items":[{"channel":%q,"formats":{"http-stream":{"content":%q}}}]}`, channel, content)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		s.publish(t, item)
		select {
		case l, ok := <-st.lines:
			if !ok {
				t.Fatal("stream ended")
			}
			if l != content {
				t.Fatalf("got %q, want %q", l, content)
			}
			// Drain duplicates of earlier attempts that arrive late.
			for {
				select {
				case l := <-st.lines:
					if l != content {
						t.Fatalf("got %q after %q", l, content)
					}
					continue
				case <-time.After(300 * time.Millisecond):
				}
				return
			}
		case <-time.After(300 * time.Millisecond):
		}
	}
	t.Fatal("publish never reached the stream")
}

// Long-polling: a response hold answered by a publish, and one that times out
// with the backend's original response.
func TestResponseHold(t *testing.T) {
	forEachStack(t, func(t *testing.T, tr tiers) {
		be := newGripBackend(t)
		s := tr.start(t, fmt.Sprintf("* localhost:%d", be.port()))
		s.waitReady(t, "/plain")
		type result struct {
			code int
			body string
			hdr  http.Header
			err  error
		}
		poll := func(path string) chan result {
			c := make(chan result, 1)
			go func() {
				resp, err := s.Client.Get(s.url(path))
				if err != nil {
					c <- result{err: err}
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				c <- result{resp.StatusCode, string(b), resp.Header, nil}
			}()
			return c
		}
		// The hold path (proxy→handler) comes up after the client port.
		openStreamExpect(t, s.Client, s.url("/stream?ch=probe"), "stream open\n")
		started := time.Now()
		timedOut := poll("/poll?ch=lp-timeout&t=1")
		c := poll("/poll?ch=lp")
		deadline := time.After(15 * time.Second)
	loop:
		for {
			s.publish(t, `{"items":[{"channel":"lp","formats":{"http-response":{"code":201,"headers":{"X-Pub":"1"},"body":"published\n"}}}]}`)
			select {
			case r := <-c:
				if r.err != nil || r.code != 201 || r.body != "published\n" || r.hdr.Get("X-Pub") != "1" {
					t.Fatalf("long-poll got %d %q %v %v", r.code, r.body, r.hdr, r.err)
				}
				break loop
			case <-time.After(300 * time.Millisecond):
			case <-deadline:
				t.Fatal("publish never answered the long-poll")
			}
		}
		select {
		case r := <-timedOut:
			if r.err != nil || r.code != 200 || r.body != "timeout\n" {
				t.Fatalf("timed-out poll: %d %q %v", r.code, r.body, r.err)
			}
			// Grip-Timeout 1 is raised to Pushpin's minimum of 5 s.
			if el := time.Since(started); el < 4500*time.Millisecond {
				t.Fatalf("timed out after %v, before the 5 s minimum", el)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("response hold never timed out")
		}
	}, append(interopStacks, allReal)...)
}

// Server-Sent Events are stream holds with text/event-stream.
func TestSSE(t *testing.T) {
	forEachStack(t, func(t *testing.T, tr tiers) {
		be := newGripBackend(t)
		s := tr.start(t, fmt.Sprintf("* localhost:%d", be.port()))
		s.waitReady(t, "/plain")
		st := openStreamExpect(t, s.Client, s.url("/sse?ch=news"), "event: open\n")
		if ct := st.resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("content type %q", ct)
		}
		for _, want := range []string{"data: {}\n", "\n"} {
			if l := st.next(t, 5*time.Second); l != want {
				t.Fatalf("got %q want %q", l, want)
			}
		}
		publishUntilSeen(t, s, st, "news", "event: update\n")
	}, append(interopStacks, allReal)...)
}

// A malformed publish gets a 400 with the reason; streams keep working.
func TestBadPublish(t *testing.T) {
	forEachStack(t, func(t *testing.T, tr tiers) {
		s := tr.start(t, "* test")
		s.waitReady(t, "/")
		st := openStreamExpect(t, s.Client, s.url("/stream"), "[stream opened]\n")
		for body, want := range map[string]string{
			`{"items":[{"formats":{"http-stream":{"content":"x"}}}]}`: "Invalid format: publish item object does not contain 'channel'\n",
			`not json`:  "Body is not valid JSON.\n",
			`{"foo":1}`: "Invalid format: object does not contain 'items'\n",
		} {
			resp, err := s.Client.Post(s.publishURL(), "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 400 || string(b) != want {
				t.Errorf("publish %s: %d %q, want 400 %q", body, resp.StatusCode, b, want)
			}
		}
		publishUntilSeen(t, s, st, "test", "still serving\n")
	}, append(interopStacks, allReal)...)
}

// A malformed HTTP request to the client port gets a 400-class answer from
// our connection manager (condure just closes), and others keep being served.
func TestMalformedClientRequest(t *testing.T) {
	forEachStack(t, func(t *testing.T, tr tiers) {
		s := tr.start(t, "* test")
		s.waitReady(t, "/")
		out := rawRequest(t, fmt.Sprintf("127.0.0.1:%d", s.HTTPPort), []byte("GARBAGE\r\n\r\n"), 5*time.Second)
		status, _ := bufio.NewReader(bytes.NewReader(out)).ReadString('\n')
		if !strings.HasPrefix(status, "HTTP/1.1 4") {
			t.Fatalf("malformed request answered %q", out)
		}
		resp, err := s.Client.Get(s.url("/"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("after a malformed request: %d", resp.StatusCode)
		}
	}, allOurs, ourConnMgrReal)
}
