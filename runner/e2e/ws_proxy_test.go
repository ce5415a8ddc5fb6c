package e2e

// WebSockets through our proxy, with the real condure in front, Pushpin's
// real handler and zurl behind it: passthrough, GRIP over WebSockets and
// publishing to WebSocket clients.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/gorilla/websocket"

	"github.com/pushpin-go/pushpin/internal/testwait"
)

// pxwsOursProxyOnly is Pushpin 1.36 with our proxy in place of its own.
var pxwsOursProxyOnly = tiers{"condure+our-proxy", realCondure, bin("pushpin-proxy"), realHandler, realZurl}

// pxwsBackend is a WebSocket backend (gobwas/ws: gorilla's server refuses
// to answer an extension itself) that enables GRIP when offered: it
// subscribes the connection to the channel named by ?ch= with a control
// message and greets it with "m:hello"; it echoes "echo:<msg>" (text and
// binary), closes with 4002 on "close-me", and records the close codes
// clients send it.
type pxwsBackend struct {
	ln     net.Listener
	mu     sync.Mutex
	closes []int
	offers []string
}

func pxwsNewBackend(t *testing.T) *pxwsBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &pxwsBackend{ln: ln}
	srv := &http.Server{Handler: http.HandlerFunc(b.serve)}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return b
}

func (b *pxwsBackend) port() int { return b.ln.Addr().(*net.TCPAddr).Port }

func (b *pxwsBackend) serve(w http.ResponseWriter, r *http.Request) {
	ext := r.Header.Get("Sec-WebSocket-Extensions")
	b.mu.Lock()
	b.offers = append(b.offers, ext)
	b.mu.Unlock()
	grip := ext == "grip"
	u := ws.HTTPUpgrader{}
	if grip {
		u.Header = http.Header{"Sec-WebSocket-Extensions": {"grip"}}
	}
	conn, _, _, err := u.Upgrade(r, w)
	if err != nil {
		return
	}
	defer conn.Close()
	prefix := ""
	if grip {
		prefix = "m:"
		if ch := r.URL.Query().Get("ch"); ch != "" {
			_ = wsutil.WriteServerMessage(conn, ws.OpText, []byte(`c:{"type":"subscribe","channel":"`+ch+`"}`))
		}
		_ = wsutil.WriteServerMessage(conn, ws.OpText, []byte("m:hello"))
	}
	for {
		msg, op, err := wsutil.ReadClientData(conn)
		if err != nil {
			var ce wsutil.ClosedError
			if errors.As(err, &ce) {
				b.mu.Lock()
				b.closes = append(b.closes, int(ce.Code))
				b.mu.Unlock()
			}
			return
		}
		if string(msg) == "close-me" {
			_ = ws.WriteFrame(conn, ws.NewCloseFrame(ws.NewCloseFrameBody(4002, "backend bye")))
			continue
		}
		// In 16 KB frames: zurl refuses larger ones (frame-too-large).
		// (A write larger than the buffer would go out as one frame.)
		w := wsutil.NewWriterSize(conn, ws.StateServerSide, op, 16384)
		out := append([]byte(prefix+"echo:"), msg...)
		for len(out) > 0 {
			k := min(len(out), 8192)
			_, _ = w.Write(out[:k])
			out = out[k:]
		}
		if err := w.Flush(); err != nil {
			return
		}
	}
}

func (b *pxwsBackend) closeCodes() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int(nil), b.closes...)
}

// pxwsClient is a gorilla client whose messages are read by a goroutine
// (a gorilla read that timed out leaves the connection unusable).
type pxwsClient struct {
	c    *websocket.Conn
	gate sync.Mutex // held: the reader stops reading (see pxwsPause)
	msgs chan pxwsMsg
	err  chan error // the error that ended reading (a *websocket.CloseError on a close)
}

type pxwsMsg struct {
	typ  int
	data []byte
}

// pxwsDial connects to path on the stack, retrying while the tiers are
// still connecting.
func pxwsDial(t *testing.T, s *stack, path string, read bool) *pxwsClient {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	var conn *websocket.Conn
	testwait.For(t, 15*time.Second, func() error {
		c, resp, err := d.Dial(fmt.Sprintf("ws://127.0.0.1:%d%s", s.HTTPPort, path), nil)
		if err != nil {
			if resp != nil {
				return fmt.Errorf("%w: status %d", err, resp.StatusCode)
			}
			return err
		}
		conn = c
		return nil
	})
	if conn.Subprotocol() != "" || conn.UnderlyingConn() == nil {
		t.Fatalf("unexpected handshake")
	}
	cl := &pxwsClient{c: conn, msgs: make(chan pxwsMsg, 4096), err: make(chan error, 1)}
	t.Cleanup(func() { conn.Close() })
	if read {
		cl.startReading()
	}
	return cl
}

func (c *pxwsClient) startReading() {
	go func() {
		for {
			c.gate.Lock()
			c.gate.Unlock() //nolint:staticcheck // a gate, not a critical section
			typ, data, err := c.c.ReadMessage()
			if err != nil {
				c.err <- err
				close(c.msgs)
				return
			}
			c.msgs <- pxwsMsg{typ, data}
		}
	}()
}

// pxwsPause stops c's reader before its next read; the returned func
// lets it go on.
func pxwsPause(c *pxwsClient) func() {
	c.gate.Lock()
	return c.gate.Unlock
}

func (c *pxwsClient) next(t *testing.T, d time.Duration) pxwsMsg {
	t.Helper()
	select {
	case m, ok := <-c.msgs:
		if !ok {
			t.Fatalf("connection ended: %v", <-c.err)
		}
		return m
	case <-time.After(d):
		t.Fatalf("no message within %v", d)
	}
	return pxwsMsg{}
}

// closeErr waits for the end of reading and returns the close error.
func (c *pxwsClient) closeErr(t *testing.T, d time.Duration) *websocket.CloseError {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case _, ok := <-c.msgs:
			if ok {
				continue
			}
			var ce *websocket.CloseError
			if err := <-c.err; !errors.As(err, &ce) {
				t.Fatalf("connection ended without a close: %v", err)
			}
			return ce
		case <-deadline:
			t.Fatalf("no close within %v", d)
		}
	}
}

func (c *pxwsClient) send(t *testing.T, typ int, data []byte) {
	t.Helper()
	if err := c.c.WriteMessage(typ, data); err != nil {
		t.Fatal(err)
	}
}

// pxwsPublish publishes a ws-message to a channel until a client that
// reads it saw it: the subscription travels backend → proxy → handler
// after the greeting, so the first publish may come too early.
func pxwsPublishUntil(t *testing.T, s *stack, ch string, c *pxwsClient) {
	t.Helper()
	for i := 0; ; i++ {
		if i == 20 {
			t.Fatal("no publish reached the client")
		}
		content := fmt.Sprintf("pub-%d", i)
		s.publish(t, `{"items":[{"channel":"`+ch+`","formats":{"ws-message":{"content":"`+content+`"}}}]}`)
		select {
		case m := <-c.msgs:
			if string(m.data) != content || m.typ != websocket.TextMessage {
				t.Fatalf("got %q, want %q", m.data, content)
			}
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func TestPxwsGripPublish(t *testing.T) {
	forEachStack(t, func(t *testing.T, tr tiers) {
		be := pxwsNewBackend(t)
		s := tr.start(t, fmt.Sprintf("* localhost:%d", be.port()))
		c := pxwsDial(t, s, "/ws?ch=x", true)
		if m := c.next(t, 5*time.Second); string(m.data) != "hello" {
			t.Fatalf("greeting %q", m.data)
		}
		pxwsPublishUntil(t, s, "x", c)
		s.publish(t, `{"items":[{"channel":"x","formats":{"ws-message":{"content-bin":"AAEC"}}}]}`)
		if m := c.next(t, 5*time.Second); m.typ != websocket.BinaryMessage || !bytes.Equal(m.data, []byte{0, 1, 2}) {
			t.Fatalf("binary publish %v %v", m.typ, m.data)
		}
		// Echo through the backend, text and binary; GRIP prefix stripped.
		c.send(t, websocket.TextMessage, []byte("abc"))
		if m := c.next(t, 5*time.Second); string(m.data) != "echo:abc" || m.typ != websocket.TextMessage {
			t.Fatalf("echo %q", m.data)
		}
		c.send(t, websocket.BinaryMessage, []byte{9, 8})
		if m := c.next(t, 5*time.Second); m.typ != websocket.BinaryMessage || !bytes.Equal(m.data, []byte("echo:\x09\x08")) {
			t.Fatalf("binary echo %v %q", m.typ, m.data)
		}
		// The client's close code reaches the backend.
		_ = c.c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "bye"))
		if ce := c.closeErr(t, 5*time.Second); ce.Code != 4001 {
			t.Fatalf("close reply %v", ce)
		}
		testwait.For(t, 5*time.Second, func() error {
			if codes := be.closeCodes(); len(codes) != 1 || codes[0] != 4001 {
				return fmt.Errorf("backend close codes %v", codes)
			}
			return nil
		})
		// The backend's close code reaches the client.
		c2 := pxwsDial(t, s, "/ws", true)
		c2.next(t, 5*time.Second)
		c2.send(t, websocket.TextMessage, []byte("close-me"))
		if ce := c2.closeErr(t, 5*time.Second); ce.Code != 4002 || ce.Text != "backend bye" {
			t.Fatalf("backend close %v", ce)
		}
	}, allOurs, realCondureOurs, pxwsOursProxyOnly)
}

// A 1 MB message each way through a passthrough route (no GRIP).
func TestPxwsBigMessage(t *testing.T) {
	forEachStack(t, func(t *testing.T, tr tiers) {
		be := pxwsNewBackend(t)
		s := tr.start(t, fmt.Sprintf("*,no_grip localhost:%d", be.port()))
		c := pxwsDial(t, s, "/big", true)
		big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
		c.send(t, websocket.BinaryMessage, big)
		m := c.next(t, 15*time.Second)
		if m.typ != websocket.BinaryMessage || len(m.data) != len(big)+5 || !bytes.Equal(m.data[5:], big) {
			t.Fatalf("got %d bytes", len(m.data))
		}
		be.mu.Lock()
		offer := be.offers[0]
		be.mu.Unlock()
		if offer != "" {
			t.Fatalf("no_grip route offered %q", offer)
		}
	}, allOurs, realCondureOurs, pxwsOursProxyOnly)
}

// Clients that read get every published message; one that never reads is
// closed with 1008 once its queue is past the bound, and what it got
// before has no gap.
func TestPxwsSlowClient(t *testing.T) {
	forEachStack(t, func(t *testing.T, tr tiers) {
		be := pxwsNewBackend(t)
		s := tr.start(t, fmt.Sprintf("* localhost:%d", be.port()))
		var readers []*pxwsClient
		for i := 0; i < 2; i++ {
			c := pxwsDial(t, s, "/ws?ch=slow", true)
			c.next(t, 5*time.Second)
			pxwsPublishUntil(t, s, "slow", c)
			readers = append(readers, c)
		}
		slow := pxwsDial(t, s, "/ws?ch=slow", true)
		slow.next(t, 5*time.Second)
		pxwsPublishUntil(t, s, "slow", slow)
		// From now on the slow client reads nothing from its socket. The
		// publishes go on, in rounds, until the proxy gave up on it: first
		// it may fall further behind while its credits still come back (a
		// burst is not a slow client), then its credits stop.
		resume := pxwsPause(slow)
		const size = 10000
		pad := strings.Repeat("x", size)
		n := 0
		for round := 0; !strings.Contains(s.Procs["proxy"].output(), "client cannot keep up"); round++ {
			if round == 100 {
				t.Fatal("the slow client was never closed")
			}
			var items []string
			for j := n; j < n+50; j++ {
				items = append(items, fmt.Sprintf(`{"channel":"slow","formats":{"ws-message":{"content":"%05d%s"}}}`, j, pad))
			}
			s.publish(t, `{"items":[`+strings.Join(items, ",")+`]}`)
			n += 50
			for _, c := range readers {
				for j := n - 50; j < n; j++ {
					m := c.next(t, 10*time.Second)
					for strings.HasPrefix(string(m.data), "pub-") { // the other clients' first publishes
						m = c.next(t, 10*time.Second)
					}
					if got := string(m.data[:5]); got != fmt.Sprintf("%05d", j) {
						t.Fatalf("reader got %s, want %05d", got, j)
					}
				}
			}
		}
		resume()
		got := 0
		for m := range slow.msgs {
			if strings.HasPrefix(string(m.data), "pub-") {
				continue
			}
			if string(m.data[:5]) != fmt.Sprintf("%05d", got) {
				t.Fatalf("slow client got %q at %d: a gap", m.data[:5], got)
			}
			got++
		}
		var ce *websocket.CloseError
		if err := <-slow.err; !errors.As(err, &ce) || ce.Code != 1008 || ce.Text != "client cannot keep up" {
			t.Fatalf("slow client ended with %v after %d messages", err, got)
		}
		if got >= n {
			t.Fatalf("slow client got all %d messages: the test did not fill its queue", got)
		}
		t.Logf("slow client got %d of %d, then 1008", got, n)
	}, allOurs, realCondureOurs, pxwsOursProxyOnly)
}

// pxwsWOHBackend is a WebSocket-over-HTTP backend (application/
// websocket-events, its own small codec): it accepts OPEN with the grip
// extension, subscribes the connection to ?ch= and greets it with
// "m:hello"; it echoes TEXT as "m:echo:<msg>", answers CLOSE with the same
// code, and records the close codes and DISCONNECTs it gets.
type pxwsWOHBackend struct {
	ln          net.Listener
	mu          sync.Mutex
	closes      []int
	disconnects int
	cids        map[string]bool
}

func pxwsNewWOHBackend(t *testing.T) *pxwsWOHBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &pxwsWOHBackend{ln: ln, cids: map[string]bool{}}
	srv := &http.Server{Handler: http.HandlerFunc(b.serve)}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return b
}

func (b *pxwsWOHBackend) port() int { return b.ln.Addr().(*net.TCPAddr).Port }

func (b *pxwsWOHBackend) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	evs, err := parseWOHEvents(body)
	if err != nil || r.Header.Get("Content-Type") != "application/websocket-events" {
		http.Error(w, "bad events", http.StatusBadRequest)
		return
	}
	b.mu.Lock()
	b.cids[r.Header.Get("Connection-Id")] = true
	b.mu.Unlock()
	var out strings.Builder
	for _, ev := range evs {
		switch ev.typ {
		case "OPEN":
			w.Header().Set("Sec-WebSocket-Extensions", "grip")
			out.Write(appendWOHEvent(nil, "OPEN", nil))
			if ch := r.URL.Query().Get("ch"); ch != "" {
				out.Write(appendWOHEvent(nil, "TEXT", []byte(`c:{"type":"subscribe","channel":"`+ch+`"}`)))
			}
			out.Write(appendWOHEvent(nil, "TEXT", []byte("m:hello")))
		case "TEXT":
			out.Write(appendWOHEvent(nil, "TEXT", append([]byte("m:echo:"), ev.content...)))
		case "CLOSE":
			code := 0
			if len(ev.content) >= 2 {
				code = int(ev.content[0])<<8 | int(ev.content[1])
			}
			b.mu.Lock()
			b.closes = append(b.closes, code)
			b.mu.Unlock()
			out.Write(appendWOHEvent(nil, "CLOSE", ev.content[:min(2, len(ev.content))]))
		case "DISCONNECT":
			b.mu.Lock()
			b.disconnects++
			b.mu.Unlock()
		}
	}
	w.Header().Set("Content-Type", "application/websocket-events")
	_, _ = io.WriteString(w, out.String())
}

func (b *pxwsWOHBackend) state() ([]int, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int(nil), b.closes...), b.disconnects
}

// WebSocket-over-HTTP through our proxy: GRIP greeting, a publish, echo,
// the close code both ways, a DISCONNECT for a client that vanishes.
func TestPxwsOverHTTP(t *testing.T) {
	forEachStack(t, func(t *testing.T, tr tiers) {
		be := pxwsNewWOHBackend(t)
		s := tr.start(t, fmt.Sprintf("* localhost:%d,over_http", be.port()))
		c := pxwsDial(t, s, "/woh?ch=w", true)
		if m := c.next(t, 5*time.Second); string(m.data) != "hello" {
			t.Fatalf("greeting %q", m.data)
		}
		pxwsPublishUntil(t, s, "w", c)
		c.send(t, websocket.TextMessage, []byte("abc"))
		if m := c.next(t, 5*time.Second); string(m.data) != "echo:abc" {
			t.Fatalf("echo %q", m.data)
		}
		_ = c.c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "bye"))
		if ce := c.closeErr(t, 5*time.Second); ce.Code != 4001 {
			t.Fatalf("close reply %v", ce)
		}
		if codes, _ := be.state(); len(codes) != 1 || codes[0] != 4001 {
			t.Fatalf("backend close codes %v", codes)
		}
		// A client that vanishes: the backend gets DISCONNECT.
		c2 := pxwsDial(t, s, "/woh", true)
		c2.next(t, 5*time.Second)
		c2.c.UnderlyingConn().Close()
		testwait.For(t, 10*time.Second, func() error {
			if _, d := be.state(); d != 1 {
				return fmt.Errorf("%d disconnects", d)
			}
			return nil
		})
	}, allOurs, realCondureOurs, pxwsOursProxyOnly)
}
