package zurl

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"

	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/internal/testwait"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// echo is a gorilla backend loop: every message comes back as it came.
func echo(c *websocket.Conn, _ *http.Request) {
	for {
		mt, m, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(mt, m); err != nil {
			return
		}
	}
}

// The handshake: subprotocol and extension offers pass through and the
// backend's answers come back in the 101 with all its headers; Host is the
// uri's while the connection goes to connect-host/connect-port; the
// requester's handshake headers and Accept-Encoding are replaced. The
// backend is gobwas/ws here because gorilla's server cannot accept an
// extension it does not implement (the proxy offers `grip`).
func TestWSHandshake(t *testing.T) {
	t.Parallel()
	seen := make(chan http.Header, 1)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h := req.Header.Clone()
		h.Set("X-Got-Host", req.Host)
		seen <- h
		up := ws.HTTPUpgrader{
			Protocol:  func(p string) bool { return p == "chat" },
			Negotiate: func(o httphead.Option) (httphead.Option, error) { return o, nil },
			Header:    http.Header{"X-Backend": {"yes"}},
		}
		c, _, _, err := up.Upgrade(req, w)
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(io.Discard, c) // until zurl goes
	}))
	defer be.Close()
	r := startZurl(t, nil)
	w, head := r.wsConnect(t, &zhttp.Packet{ID: "h1", URI: "ws://example.com/path?x=1", ConnectHost: "127.0.0.1", ConnectPort: port(be),
		Headers: zhttp.Headers{{Name: "Sec-WebSocket-Protocol", Value: "other, chat"}, {Name: "Sec-WebSocket-Extensions", Value: "grip"},
			{Name: "X-Foo", Value: "bar"}, {Name: "Sec-WebSocket-Key", Value: "stale"}, {Name: "Connection", Value: "Upgrade"},
			{Name: "Upgrade", Value: "websocket"}, {Name: "Sec-WebSocket-Version", Value: "13"}, {Name: "Accept-Encoding", Value: "gzip"}}})
	if head.Reason != "Switching Protocols" || head.Credits != 200001 || !head.Ext.Multi || head.From != r.zid {
		t.Fatalf("101: %s", fmtP(head))
	}
	if head.Headers.Get("Sec-WebSocket-Protocol") != "chat" || !strings.HasPrefix(head.Headers.Get("Sec-WebSocket-Extensions"), "grip") ||
		head.Headers.Get("X-Backend") != "yes" || head.Headers.Get("Upgrade") == "" || head.Headers.Get("Sec-WebSocket-Accept") == "" {
		t.Fatalf("101 headers: %v", head.Headers)
	}
	h := waitChan(t, seen, "handshake")
	if h.Get("X-Got-Host") != "example.com" || h.Get("X-Foo") != "bar" || h.Get("Sec-WebSocket-Key") == "stale" ||
		len(h.Values("Sec-WebSocket-Key")) != 1 || len(h.Values("Upgrade")) != 1 || h.Get("Accept-Encoding") != "" ||
		h.Get("Sec-WebSocket-Extensions") != "grip" {
		t.Fatalf("backend saw %v", h)
	}
	w.control(zhttp.Cancel, 0, "")
}

// A refused handshake is the `rejected` error with the backend's status,
// headers and body (zurl 1.11 sends the code and body only); connection
// failures and policy refusals come at seq 0, as zurl sends them.
func TestWSHandshakeFailures(t *testing.T) {
	t.Parallel()
	rej := httptestServer(t, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("X-Why", "nope")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte("go away"))
	})
	plain := httptestServer(t, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Connection", "Upgrade")
		w.WriteHeader(http.StatusSwitchingProtocols) // without the accept key
	})
	r := startZurl(t, nil)
	p := r.wsOpen(&zhttp.Packet{ID: "rej", URI: "ws://" + rej + "/"})
	if p.Type != zhttp.Error || p.Condition != "rejected" || p.Seq != 0 || p.Code != 403 || p.Reason != "Forbidden" ||
		string(p.Body) != "go away" || p.Headers.Get("X-Why") != "nope" || p.Headers.Get("Content-Length") != "7" {
		t.Fatalf("rejected: %s %v", fmtP(p), p.Headers)
	}
	for _, c := range []struct{ id, uri, cond string }{
		{"refused", "ws://" + closedAddr(t) + "/", "remote-connection-failed"},
		{"bad101", "ws://" + plain + "/", "undefined-condition"},
		{"tls", "wss://" + plain + "/", "tls-error"},
	} {
		p := r.wsOpen(&zhttp.Packet{ID: c.id, URI: c.uri})
		if p.Type != zhttp.Error || p.Condition != c.cond || p.Seq != 0 {
			t.Fatalf("%s: %s", c.id, fmtP(p))
		}
	}
	// No ignore-policies: the test config denies 10.*.
	q := &zhttp.Packet{From: "proxy", ID: "pol", HasSeq: true, URI: "ws://10.1.2.3/", Credits: 100, HasCredits: true}
	if err := r.push.Send(q.AppendMessage(nil)); err != nil {
		t.Fatal(err)
	}
	if p := r.must("pol", 10*time.Second); p.Type != zhttp.Error || p.Condition != "policy-violation" {
		t.Fatalf("policy: %s", fmtP(p))
	}
}

// Text, binary and fragmented messages and 1 MB each way: the requester's
// packets become frames (more:true ⇒ continuation), the backend's frames
// come back as packets within the credits (whole up to the window, a 1 MB
// frame in pieces), and the requester is granted credits for what was
// written.
func TestWSMessages(t *testing.T) {
	t.Parallel()
	be := wsBackend(t, &websocket.Upgrader{ReadBufferSize: 1 << 10, WriteBufferSize: 2 << 20}, echo)
	r := startZurl(t, nil)
	w, _ := r.wsConnect(t, &zhttp.Packet{ID: "m1", URI: wsURI(be, "/")})
	for _, m := range []struct {
		ct   string
		body []byte
	}{
		{"", []byte("hello")},
		{"binary", []byte{0, 1, 2, 255}},
		{"", []byte{}},
		{"binary", bytes.Repeat([]byte("0123456789abcdef"), 1<<16)}, // 1 MB
		{"", []byte(strings.Repeat("é", 150000))},                   // 300 KB of text, split at odd bytes
		{"binary", bytes.Repeat([]byte{7}, 150000)},                 // within the window: one packet
	} {
		w.send(m.ct, m.body)
		ct, got, packets := w.message()
		if ct != m.ct || !bytes.Equal(got, m.body) {
			t.Fatalf("echo of %d bytes (%q): got %d bytes (%q)", len(m.body), m.ct, len(got), ct)
		}
		// A frame within the requester's window (200000) comes whole, as
		// from zurl; a larger one in pieces no larger than the window.
		if want := (len(m.body) + 199999) / 200000; packets != max(want, 1) {
			t.Fatalf("echo of %d bytes came in %d packets, want %d", len(m.body), packets, max(want, 1))
		}
	}
	// Fragments from the requester are one message at the backend.
	w.r.later(&zhttp.Packet{ID: "m1", Body: []byte("fr"), More: true})
	w.r.later(&zhttp.Packet{ID: "m1", Body: []byte("ag"), More: true})
	w.r.later(&zhttp.Packet{ID: "m1", Body: []byte("ment")})
	w.credits -= 8
	if ct, got, _ := w.message(); ct != "" || string(got) != "fragment" {
		t.Fatalf("fragments: %q %q", ct, got)
	}
	w.waitCredits(200001) // everything written was credited back
}

// Pings and pongs with their payloads both ways, counted in credits.
func TestWSPingPong(t *testing.T) {
	t.Parallel()
	pongs := make(chan string, 4)
	be := wsBackend(t, nil, func(c *websocket.Conn, _ *http.Request) {
		c.SetPongHandler(func(s string) error { pongs <- s; return nil })
		if err := c.WriteControl(websocket.PingMessage, []byte("from-be"), time.Now().Add(5*time.Second)); err != nil {
			return
		}
		echo(c, nil) // gorilla answers pings with pongs itself
	})
	r := startZurl(t, nil)
	w, _ := r.wsConnect(t, &zhttp.Packet{ID: "p1", URI: wsURI(be, "/")})
	if p := w.recv(); p.Type != zhttp.Ping || string(p.Body) != "from-be" {
		t.Fatalf("want the backend's ping, got %s", fmtP(p))
	}
	w.control(zhttp.Pong, 0, "from-be")
	if got := waitChan(t, pongs, "pong at the backend"); got != "from-be" {
		t.Fatalf("backend got pong %q", got)
	}
	w.control(zhttp.Ping, 0, "from-proxy")
	w.credits -= int64(len("from-be") + len("from-proxy"))
	if p := w.recv(); p.Type != zhttp.Pong || string(p.Body) != "from-proxy" {
		t.Fatalf("want the backend's pong, got %s", fmtP(p))
	}
	w.waitCredits(200001)
}

// The backend closes: its code and reason come as a close packet, the
// requester's answering close goes back, and the session ends.
func TestWSCloseFromBackend(t *testing.T) {
	t.Parallel()
	got := make(chan error, 1)
	be := wsBackend(t, nil, func(c *websocket.Conn, _ *http.Request) {
		_ = c.WriteMessage(websocket.TextMessage, []byte("last words"))
		_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "server bye"))
		_, _, err := c.ReadMessage()
		got <- err
	})
	r := startZurl(t, nil)
	w, _ := r.wsConnect(t, &zhttp.Packet{ID: "c1", URI: wsURI(be, "/")})
	if _, m, _ := w.message(); string(m) != "last words" {
		t.Fatalf("message %q", m)
	}
	if p := w.recv(); p.Type != zhttp.Close || p.Code != 4001 || string(p.Body) != "server bye" {
		t.Fatalf("want close 4001, got %s", fmtP(p))
	}
	w.control(zhttp.Close, 4001, "ok")
	var ce *websocket.CloseError
	if err := waitChan(t, got, "the backend's read"); !errors.As(err, &ce) || ce.Code != 4001 || ce.Text != "ok" {
		t.Fatalf("backend read %v", err)
	}
	waitOpen(t, r, 0)
	w.quiet(200 * time.Millisecond)
}

// The requester closes: the backend gets code and reason, its answer comes
// back as the last packet. A backend that never answers gets wsClose to do
// so; then the requester gets a close without code.
func TestWSCloseFromRequester(t *testing.T) {
	t.Parallel()
	got := make(chan error, 2)
	release := make(chan struct{})
	be := wsBackend(t, nil, func(c *websocket.Conn, req *http.Request) {
		if req.URL.Path == "/mute" {
			c.SetCloseHandler(func(int, string) error { return nil }) // no answer
		}
		_, _, err := c.ReadMessage()
		got <- err
		if req.URL.Path == "/mute" {
			<-release // the connection stays up, silent
		}
	})
	t.Cleanup(func() { close(release) })
	r := startZurl(t, nil, func(s *Server) { s.timers.wsClose = 300 * time.Millisecond })
	for _, path := range []string{"/", "/mute"} {
		id := "q" + path
		w, _ := r.wsConnect(t, &zhttp.Packet{ID: id, URI: wsURI(be, path)})
		w.control(zhttp.Close, 4002, "client bye")
		var ce *websocket.CloseError
		if err := waitChan(t, got, "the backend's read"); !errors.As(err, &ce) || ce.Code != 4002 || ce.Text != "client bye" {
			t.Fatalf("%s: backend read %v", path, err)
		}
		p := w.recv()
		switch {
		case path == "/" && (p.Type != zhttp.Close || p.Code != 4002):
			t.Fatalf("want the echoed close, got %s", fmtP(p))
		case path == "/mute" && (p.Type != zhttp.Close || p.HasCode):
			t.Fatalf("want a close without code, got %s", fmtP(p))
		}
		waitOpen(t, r, 0)
	}
}

// A backend that vanishes without a close frame ends the session with
// undefined-condition (as zurl); a cancel from the requester drops the
// backend connection and nothing more is sent.
func TestWSVanishAndCancel(t *testing.T) {
	t.Parallel()
	gone := make(chan error, 1)
	be := wsBackend(t, nil, func(c *websocket.Conn, req *http.Request) {
		if req.URL.Path == "/vanish" {
			c.UnderlyingConn().Close()
			return
		}
		_, _, err := c.ReadMessage()
		gone <- err
	})
	r := startZurl(t, nil)
	w, _ := r.wsConnect(t, &zhttp.Packet{ID: "v1", URI: wsURI(be, "/vanish")})
	if p := w.recv(); p.Type != zhttp.Error || p.Condition != "undefined-condition" {
		t.Fatalf("vanish: %s", fmtP(p))
	}
	w, _ = r.wsConnect(t, &zhttp.Packet{ID: "x1", URI: wsURI(be, "/")})
	w.r.later(&zhttp.Packet{ID: "x1", Type: zhttp.Cancel})
	var ce *websocket.CloseError
	if err := waitChan(t, gone, "the backend's read"); err == nil || (errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure) {
		t.Fatalf("backend read %v, want the connection dropped", err)
	}
	waitOpen(t, r, 0)
	w.quiet(200 * time.Millisecond)
}

// Back-pressure: with its credits used up the requester gets nothing more
// and zurl stops reading, so the backend's writes stall; granting credits
// resumes the flow and every message arrives, in order.
func TestWSBackPressure(t *testing.T) {
	t.Parallel()
	const n, size = 2000, 16 << 10 // 32 MB: well past the kernel's socket buffers
	var written atomic.Int64
	be := wsBackend(t, nil, func(c *websocket.Conn, _ *http.Request) {
		msg := make([]byte, size)
		for i := 0; i < n; i++ {
			copy(msg, fmt.Sprintf("%08d", i))
			if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
				return
			}
			written.Add(1)
		}
		_, _, _ = c.ReadMessage()
	})
	r := startZurl(t, nil)
	w, _ := r.wsConnect(t, &zhttp.Packet{ID: "bp", URI: wsURI(be, "/"), Credits: size, HasCredits: true})
	p := w.recv()
	if len(p.Body) != size || p.More {
		t.Fatalf("first message: %s", fmtP(p))
	}
	// Stalled: the count stops well short while no credits are granted
	// (no change for 300 ms of polling).
	last, since := int64(-1), time.Now()
	testwait.For(t, 20*time.Second, func() error {
		if now := written.Load(); now != last {
			last, since = now, time.Now()
		}
		if time.Since(since) < 300*time.Millisecond {
			return fmt.Errorf("backend still writing (%d)", last)
		}
		return nil
	})
	if last >= n/2 {
		t.Fatalf("backend wrote %d of %d messages without credits", last, n)
	}
	w.r.credit("bp", size)
	for i := 1; i < n; i++ {
		_, m, _ := w.message()
		if len(m) != size || string(m[:8]) != fmt.Sprintf("%08d", i) {
			t.Fatalf("message %d: %d bytes %q", i, len(m), m[:8])
		}
	}
	w.r.later(&zhttp.Packet{ID: "bp", Type: zhttp.Cancel})
	waitOpen(t, r, 0)
}

// Data beyond the granted credits cancels the session, as for HTTP bodies.
func TestWSBeyondCredits(t *testing.T) {
	t.Parallel()
	be := wsBackend(t, nil, func(c *websocket.Conn, _ *http.Request) { _, _, _ = c.ReadMessage(); _, _, _ = c.ReadMessage() })
	r := startZurl(t, func(c *configs.ZurlConfig) { c.BufferSize = 1000 })
	w, head := r.wsConnect(t, &zhttp.Packet{ID: "oc", URI: wsURI(be, "/")})
	if head.Credits != 1001 {
		t.Fatalf("credits %d, want buffer_size+1", head.Credits)
	}
	// Without waiting for credits: the writer may have taken some, so
	// send more than could ever have been granted back.
	for i := 0; i < 3; i++ {
		w.r.later(&zhttp.Packet{ID: "oc", Body: make([]byte, 1000)})
	}
	for {
		p := w.pull()
		if p.Type == zhttp.Cancel {
			break
		}
		if p.Type != zhttp.Credit {
			t.Fatalf("want cancel, got %s", fmtP(p))
		}
	}
	waitOpen(t, r, 0)
}

// wss through TLS: a self-signed backend works with ignore-tls-errors.
func TestWSS(t *testing.T) {
	t.Parallel()
	be := httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		c, err := (&websocket.Upgrader{}).Upgrade(rw, req, nil)
		if err != nil {
			return
		}
		defer c.Close()
		echo(c, req)
	}))
	defer be.Close()
	r := startZurl(t, nil)
	w, _ := r.wsConnect(t, &zhttp.Packet{ID: "s1", URI: "wss://localhost:" + fmt.Sprint(port(be)) + "/", ConnectHost: "127.0.0.1",
		IgnoreTLSErrors: true})
	w.send("", []byte("over tls"))
	if _, m, _ := w.message(); string(m) != "over tls" {
		t.Fatalf("echo %q", m)
	}
	w.control(zhttp.Close, 1000, "")
	if p := w.recv(); p.Type != zhttp.Close || p.Code != 1000 {
		t.Fatalf("close: %s", fmtP(p))
	}
}

// Keep-alives go to a live session; a silent one expires with
// session-timeout and its backend connection is dropped.
func TestWSKeepAliveAndExpiry(t *testing.T) {
	t.Parallel()
	gone := make(chan error, 1)
	be := wsBackend(t, nil, func(c *websocket.Conn, _ *http.Request) { _, _, err := c.ReadMessage(); gone <- err })
	r := startZurl(t, nil, fastTimers(200*time.Millisecond, 800*time.Millisecond))
	w, _ := r.wsConnect(t, &zhttp.Packet{ID: "ka", URI: wsURI(be, "/")})
	kas := 0
	p := w.r.must("ka", 10*time.Second)
	for ; p.Type == zhttp.KeepAlive; p = w.r.must("ka", 10*time.Second) {
		kas++
	}
	if p.Type != zhttp.Error || p.Condition != "session-timeout" || kas == 0 {
		t.Fatalf("want keep-alives (got %d) then session-timeout, got %s", kas, fmtP(p))
	}
	_ = waitChan(t, gone, "the backend connection dropped")
	waitOpen(t, r, 0)
}

func waitOpen(t *testing.T, r *requester, n int) {
	t.Helper()
	testwait.For(t, 10*time.Second, func() error {
		if got := r.srv.Open(); got != n {
			return fmt.Errorf("%d sessions open, want %d", got, n)
		}
		return nil
	})
}
