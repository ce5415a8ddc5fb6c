package connmgr

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// wsClient is a gorilla/websocket client connected through the connection
// manager, and its zws session as the fake server sees it.
type wsClient struct {
	*websocket.Conn
	id    string
	first *zhttp.Packet
	resp  *http.Response
	seq   int64 // next seq the fake server sends on this session
}

type wsOpts struct {
	dialer  *websocket.Dialer
	header  http.Header
	credits int64 // credits in the accept (0: none, as Pushpin's proxy)
	accept  zhttp.Headers
}

// openWS dials a WebSocket through the connection manager; the fake
// server accepts it with a 101.
func openWS(t *testing.T, f *fakeServer, addr, path string, o wsOpts) *wsClient {
	t.Helper()
	d := o.dialer
	if d == nil {
		d = &websocket.Dialer{}
	}
	type res struct {
		c    *websocket.Conn
		resp *http.Response
		err  error
	}
	done := make(chan res, 1)
	go func() {
		c, resp, err := d.Dial("ws://"+addr+path, o.header)
		done <- res{c, resp, err}
	}()
	p := f.first()
	f.send(&zhttp.Packet{ID: p.ID, Seq: 0, Ext: zhttp.Ext{Multi: true}, Code: 101, HasCode: true, Reason: "Switching Protocols",
		Headers: o.accept, HasHeaders: true, Credits: o.credits, HasCredits: o.credits > 0})
	r := <-done
	if r.err != nil {
		t.Fatalf("dial: %v", r.err)
	}
	t.Cleanup(func() { r.c.Close() })
	_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	return &wsClient{Conn: r.c, id: p.ID, first: p, resp: r.resp, seq: 1}
}

// to sends p on the client's session with its next seq.
func (c *wsClient) to(f *fakeServer, p *zhttp.Packet) {
	p.ID, p.Seq = c.id, c.seq
	c.seq++
	f.send(p)
}

func (c *wsClient) expectMessage(t *testing.T, typ int, want string) {
	t.Helper()
	mt, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if mt != typ || string(b) != want {
		t.Fatalf("message %d %q, want %d %q", mt, clipS(string(b)), typ, clipS(want))
	}
}

func clipS(s string) string {
	if len(s) > 80 {
		return fmt.Sprintf("%s…(%d bytes)", s[:80], len(s))
	}
	return s
}

// laterOf receives the next packet for session id other than a
// keep-alive.
func (f *fakeServer) laterOf(id string) *zhttp.Packet {
	f.t.Helper()
	p := f.laterData()
	if p.ID != id {
		f.t.Fatalf("packet for %q, want %q: %+v", p.ID, id, p)
	}
	return p
}

func TestWebSocketHandshake(t *testing.T) {
	t.Parallel()
	base, addr := startServer(t, nil)
	f := newFakeServer(t, base, "fakeproxy", true)
	c := openWS(t, f, addr, "/chat?x=1", wsOpts{
		header: http.Header{"Sec-Websocket-Protocol": {"chat, superchat"}, "X-Mine": {"1"}},
		accept: hdr("Sec-WebSocket-Protocol", "chat", "X-Server", "yes", "Upgrade", "junk", "Sec-WebSocket-Accept", "junk")})
	p := c.first
	check(t, "uri", p.URI, "ws://"+addr+"/chat?x=1")
	check(t, "method/stream/more", []any{p.Method, p.Stream, p.More}, []any{"GET", false, false})
	check(t, "credits", []any{p.Credits, p.HasCredits}, []any{DefaultBufferSize, true})
	for _, h := range []string{"Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Protocol", "X-Mine"} {
		if !p.Headers.Has(h) {
			t.Errorf("request packet lacks %s: %v", h, p.Headers)
		}
	}
	check(t, "peer", p.PeerAddress, "127.0.0.1")
	check(t, "subprotocol", c.Subprotocol(), "chat")
	check(t, "server header", c.resp.Header.Get("X-Server"), "yes")
	check(t, "one Upgrade", c.resp.Header.Values("Upgrade"), []string{"websocket"})
}

func TestWebSocketMessages(t *testing.T) {
	t.Parallel()
	base, addr := startServer(t, nil)
	f := newFakeServer(t, base, "fakeproxy", true)
	c := openWS(t, f, addr, "/ws", wsOpts{credits: 1000})

	must(t, c.WriteMessage(websocket.TextMessage, []byte("hello")))
	p := f.laterOf(c.id)
	check(t, "text packet", []any{p.Type, p.ContentType, string(p.Body), p.More}, []any{zhttp.Data, "text", "hello", false})
	must(t, c.WriteMessage(websocket.BinaryMessage, []byte{0, 1, 2, 255}))
	p = f.laterOf(c.id)
	check(t, "binary packet", []any{p.ContentType, p.Body}, []any{"binary", []byte{0, 1, 2, 255}})

	c.to(f, &zhttp.Packet{ContentType: "text", Body: []byte("srv-text")})
	c.expectMessage(t, websocket.TextMessage, "srv-text")
	c.to(f, &zhttp.Packet{ContentType: "binary", Body: []byte{9, 8}})
	c.expectMessage(t, websocket.BinaryMessage, "\x09\x08")
	// A message in three packets: one message for the client.
	c.to(f, &zhttp.Packet{ContentType: "text", Body: []byte("one "), More: true})
	c.to(f, &zhttp.Packet{ContentType: "text", Body: []byte("two "), More: true})
	c.to(f, &zhttp.Packet{ContentType: "text", Body: []byte("three")})
	c.expectMessage(t, websocket.TextMessage, "one two three")
	// Credits come back for what was written: 8, 2, then the pieces.
	var got []int64
	for sum := int64(0); sum < 8+2+13; {
		p := f.laterOf(c.id)
		if p.Type != zhttp.Credit {
			t.Fatalf("want credits, got %+v", p)
		}
		got = append(got, p.Credits)
		sum += p.Credits
	}
	t.Logf("credits returned: %v", got)
}

// A client's ping is passed on as a ping packet (condure does so too) and
// answered at once (condure 1.9.1 does not: checked with
// CONNMGR_REFERENCE; a pong comes only if the server sends one).
func TestWebSocketClientPing(t *testing.T) {
	t.Parallel()
	base, addr := startServer(t, nil)
	f := newFakeServer(t, base, "fakeproxy", true)
	c := openWS(t, f, addr, "/ws", wsOpts{credits: 1000})
	pongs := make(chan string, 4)
	c.SetPongHandler(func(s string) error { pongs <- s; return nil })
	go func() { _, _, _ = c.ReadMessage() }()
	must(t, c.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(time.Second)))
	p := f.laterOf(c.id)
	check(t, "ping packet", []any{p.Type, string(p.Body)}, []any{zhttp.Ping, "are you there"})
	ours(t, "condure does not answer a client's ping itself")
	select {
	case s := <-pongs:
		check(t, "pong", s, "are you there")
	case <-time.After(3 * time.Second):
		t.Fatal("no pong")
	}
}

// A fragmented client message, with a ping between its fragments, goes
// out as pieces with more:true on all but the last, the ping in between;
// the ping is answered at once.
func TestWebSocketFragmentsAndPing(t *testing.T) {
	t.Parallel()
	ours(t, "condure fails a connection whose client interleaves a control frame with fragments (RFC 6455 §5.4 allows it)")
	base, addr := startServer(t, nil)
	f := newFakeServer(t, base, "fakeproxy", true)
	c := openWS(t, f, addr, "/ws", wsOpts{credits: 1000})
	pongs := make(chan string, 4)
	c.SetPongHandler(func(s string) error { pongs <- s; return nil })
	go func() {
		for {
			if _, _, err := c.NextReader(); err != nil {
				return
			}
		}
	}()
	raw := c.UnderlyingConn()
	for _, fr := range [][]byte{
		clientFrame(false, ws.OpText, "frag1 "),
		clientFrame(true, ws.OpPing, "ping-data"),
		clientFrame(false, ws.OpContinuation, "frag2 "),
		clientFrame(true, ws.OpContinuation, "end"),
	} {
		_, err := raw.Write(fr)
		must(t, err)
	}
	var seen []string
	for len(seen) < 4 {
		p := f.laterOf(c.id)
		seen = append(seen, fmt.Sprintf("%s/%s/%q/%v", p.Type, p.ContentType, p.Body, p.More))
	}
	check(t, "packets", seen, []string{`/text/"frag1 "/true`, `ping//"ping-data"/false`, `/text/"frag2 "/true`, `/text/"end"/false`})
	select {
	case s := <-pongs:
		check(t, "pong", s, "ping-data")
	case <-time.After(5 * time.Second):
		t.Fatal("no pong")
	}
}

// clientFrame is a masked frame as a client sends it.
func clientFrame(fin bool, op ws.OpCode, payload string) []byte {
	fr := ws.MaskFrame(ws.NewFrame(op, fin, []byte(payload)))
	var b bytes.Buffer
	_ = ws.WriteFrame(&b, fr)
	return b.Bytes()
}

// The server's ping reaches the client, whose pong comes back as a pong
// packet; the server's pong is a pong frame.
func TestWebSocketServerPing(t *testing.T) {
	t.Parallel()
	base, addr := startServer(t, nil)
	f := newFakeServer(t, base, "fakeproxy", true)
	c := openWS(t, f, addr, "/ws", wsOpts{credits: 1000})
	pings := make(chan string, 1)
	c.SetPingHandler(func(s string) error {
		pings <- s
		return c.WriteControl(websocket.PongMessage, []byte(s), time.Now().Add(time.Second))
	})
	go func() { _, _, _ = c.ReadMessage() }()
	c.to(f, &zhttp.Packet{Type: zhttp.Ping, Body: []byte("pp")})
	select {
	case s := <-pings:
		check(t, "ping", s, "pp")
	case <-time.After(5 * time.Second):
		t.Fatal("no ping")
	}
	for {
		p := f.laterOf(c.id)
		if p.Type == zhttp.Credit {
			continue
		}
		check(t, "pong packet", []any{p.Type, string(p.Body)}, []any{zhttp.Pong, "pp"})
		break
	}
}

// Close from the client: the server gets its code and reason, answers
// with its own close, and the connection ends.
func TestWebSocketClientClose(t *testing.T) {
	t.Parallel()
	base, addr := startServer(t, nil)
	f := newFakeServer(t, base, "fakeproxy", true)
	c := openWS(t, f, addr, "/ws", wsOpts{credits: 1000})
	must(t, c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "client leaving")))
	p := f.laterOf(c.id)
	check(t, "close packet", []any{p.Type, p.Code, string(p.Body)}, []any{zhttp.Close, 4001, "client leaving"})
	c.to(f, &zhttp.Packet{Type: zhttp.Close, Code: 4001, HasCode: true, Body: []byte("bye")})
	_, _, err := c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 || ce.Text != "bye" {
		t.Fatalf("client got %v, want close 4001 bye", err)
	}
	expectClosed(t, c.UnderlyingConn())
}

// Close from the server: the client sees the code and reason; its answer
// reaches the server; then the connection ends.
func TestWebSocketServerClose(t *testing.T) {
	t.Parallel()
	base, addr := startServer(t, nil)
	f := newFakeServer(t, base, "fakeproxy", true)
	c := openWS(t, f, addr, "/ws", wsOpts{credits: 1000})
	c.to(f, &zhttp.Packet{Type: zhttp.Close, Code: 4002, HasCode: true, Body: []byte("server closing")})
	_, _, err := c.ReadMessage() // gorilla answers the close with the same code
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4002 || ce.Text != "server closing" {
		t.Fatalf("client got %v, want close 4002", err)
	}
	p := f.laterOf(c.id)
	check(t, "close answer", []any{p.Type, p.Code}, []any{zhttp.Close, 4002})
	expectClosed(t, c.UnderlyingConn())
}

func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("connection not closed")
		}
		return
	}
}

// A client that disappears without a close frame: the server gets cancel.
func TestWebSocketDisconnectCancels(t *testing.T) {
	t.Parallel()
	base, addr := startServer(t, nil)
	f := newFakeServer(t, base, "fakeproxy", true)
	c := openWS(t, f, addr, "/ws", wsOpts{credits: 1000})
	c.UnderlyingConn().Close()
	p := f.laterOf(c.id)
	check(t, "packet", p.Type, zhttp.Cancel)
}

// Protocol errors fail the connection with the RFC's close code; the
// server gets a cancel.
func TestWebSocketProtocolErrors(t *testing.T) {
	t.Parallel()
	ours(t, "condure neither validates UTF-8 nor limits message size")
	base, addr := startServer(t, func(c *Config) { c.WSMaxMessage = 1000 })
	f := newFakeServer(t, base, "fakeproxy", true)
	for _, tc := range []struct {
		name  string
		frame []byte
		code  int
	}{
		{"invalid UTF-8", clientFrame(true, ws.OpText, "ok \xc3\x28 bad"), 1007},
		{"oversize", clientFrame(true, ws.OpBinary, strings.Repeat("x", 1001)), 1009},
		{"unmasked", []byte{0x81, 0x02, 'h', 'i'}, 1002},
		{"reserved bits", append([]byte{0xc1}, clientFrame(true, ws.OpText, "x")[1:]...), 1002},
	} {
		c := openWS(t, f, addr, "/ws", wsOpts{credits: 100000})
		_, err := c.UnderlyingConn().Write(tc.frame)
		must(t, err)
		_, _, err = c.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != tc.code {
			t.Fatalf("%s: client got %v, want close %d", tc.name, err, tc.code)
		}
		for {
			p := f.laterOf(c.id)
			if p.Type == zhttp.Data {
				continue // the valid start of the text went out as it came
			}
			check(t, tc.name+": packet", p.Type, zhttp.Cancel)
			break
		}
		expectClosed(t, c.UnderlyingConn())
	}
}

// A refused handshake is the server's HTTP response.
func TestWebSocketRejected(t *testing.T) {
	t.Parallel()
	base, addr := startServer(t, nil)
	f := newFakeServer(t, base, "fakeproxy", true)
	done := make(chan error, 1)
	var resp *http.Response
	go func() {
		var err error
		_, resp, err = websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
		done <- err
	}()
	p := f.first()
	f.send(&zhttp.Packet{ID: p.ID, Seq: 0, Type: zhttp.Error, Condition: "rejected", Code: 403, HasCode: true, Reason: "Forbidden",
		Headers: hdr("X-Why", "no", "Content-Type", "text/plain"), HasHeaders: true, Body: []byte("go away\n")})
	if err := <-done; !errors.Is(err, websocket.ErrBadHandshake) {
		t.Fatalf("dial: %v", err)
	}
	check(t, "status", resp.StatusCode, 403)
	check(t, "header", resp.Header.Get("X-Why"), "no")
}

// The handshake is checked before anything goes to a server.
func TestWebSocketBadHandshake(t *testing.T) {
	t.Parallel()
	ours(t, "condure drops the connection without a response")
	_, addr := startServer(t, nil)
	for _, tc := range []struct{ req, status string }{
		{"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", "HTTP/1.1 426 "},
		{"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n", "HTTP/1.1 400 "},
	} {
		c, br := dial(t, addr)
		_, _ = c.Write([]byte(tc.req))
		if h := readHead(t, br); !strings.HasPrefix(h, tc.status) {
			t.Errorf("%q: got %q", tc.req, h)
		}
	}
}
