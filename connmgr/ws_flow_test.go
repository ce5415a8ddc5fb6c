package connmgr

import (
	"bytes"
	"compress/flate"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// Flow control, size, compression and fan-out of WebSocket sessions.

// 1 MB each way: the server sends within our 8192 credits (waiting for
// them), the client's message goes out within the server's.
func TestWebSocketMegabyte(t *testing.T) {
	t.Parallel()
	base, addr := startServer(t, nil)
	f := newFakeServer(t, base, "fakeproxy", true)
	c := openWS(t, f, addr, "/ws", wsOpts{credits: 65536})
	big := bytes.Repeat([]byte("0123456789abcdef"), 65536)
	got := make(chan []byte, 1)
	go func() {
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Error(err)
		}
		got <- b
	}()
	credits := int64(DefaultBufferSize)
	for sent := 0; sent < len(big); {
		for credits == 0 {
			p := f.laterOf(c.id)
			if p.Type != zhttp.Credit {
				t.Fatalf("want credits, got %+v", p)
			}
			credits += p.Credits
		}
		n := min(int(credits), len(big)-sent)
		c.to(f, &zhttp.Packet{ContentType: "binary", Body: big[sent : sent+n], More: sent+n < len(big)})
		sent += n
		credits -= int64(n)
	}
	if b := <-got; !bytes.Equal(b, big) {
		t.Fatalf("client got %d bytes, want %d", len(b), len(big))
	}
	// Client to server: within the 65536 credits, then each credit packet.
	go func() { _ = c.WriteMessage(websocket.BinaryMessage, big) }()
	var in []byte
	window := int64(65536)
	for {
		p := f.laterOf(c.id)
		if p.Type == zhttp.Credit {
			continue
		}
		in = append(in, p.Body...)
		window -= int64(len(p.Body))
		if window < 0 {
			t.Fatal("connection manager exceeded the server's credits")
		}
		if !p.More {
			break
		}
		if window == 0 {
			f.send(&zhttp.Packet{ID: c.id, Seq: c.seq, Type: zhttp.Credit, Credits: 65536, HasCredits: true})
			c.seq++
			window = 65536
		}
	}
	if !bytes.Equal(in, big) {
		t.Fatalf("server got %d bytes", len(in))
	}
}

// Back-pressure: nothing beyond the server's credits is sent, and the
// rest follows each credit.
func TestWebSocketCredits(t *testing.T) {
	t.Parallel()
	base, addr := startServer(t, nil)
	f := newFakeServer(t, base, "fakeproxy", true)
	c := openWS(t, f, addr, "/ws", wsOpts{credits: 10})
	must(t, c.WriteMessage(websocket.TextMessage, []byte("0123456789abcdefghijklmno")))
	must(t, c.WriteMessage(websocket.PingMessage, []byte("p")))
	p := f.laterOf(c.id)
	check(t, "first piece", []any{string(p.Body), p.More}, []any{"0123456789", true})
	f.noData(300 * time.Millisecond)
	c.to(f, &zhttp.Packet{Type: zhttp.Credit, Credits: 20, HasCredits: true})
	p = f.laterOf(c.id)
	check(t, "rest", []any{string(p.Body), p.More}, []any{"abcdefghijklmno", false})
	p = f.laterOf(c.id)
	check(t, "ping", []any{p.Type, string(p.Body)}, []any{zhttp.Ping, "p"})
	// A server sending past our credits loses the session.
	c.to(f, &zhttp.Packet{ContentType: "text", Body: bytes.Repeat([]byte("x"), DefaultBufferSize+1)})
	for {
		p := f.laterOf(c.id)
		if p.Type == zhttp.Cancel {
			break
		}
	}
	expectClosed(t, c.UnderlyingConn())
}

// permessage-deflate: negotiated when --compression is on; the server's
// messages are compressed per session, the client's inflated; credits
// count uncompressed bytes.
func TestWebSocketCompression(t *testing.T) {
	t.Parallel()
	ours(t, "timing overrides")
	base, addr := startServer(t, func(c *Config) { c.Compression = true })
	f := newFakeServer(t, base, "fakeproxy", true)
	c := openWS(t, f, addr, "/ws", wsOpts{credits: 100000, dialer: &websocket.Dialer{EnableCompression: true}})
	ext := c.resp.Header.Get("Sec-WebSocket-Extensions")
	if !strings.HasPrefix(ext, "permessage-deflate") {
		t.Fatalf("extension %q", ext)
	}
	text := strings.Repeat("compress me please ", 500)
	c.to(f, &zhttp.Packet{ContentType: "text", Body: []byte(text[:4000]), More: true})
	c.to(f, &zhttp.Packet{ContentType: "text", Body: []byte(text[4000:])})
	c.expectMessage(t, websocket.TextMessage, text)
	c.to(f, &zhttp.Packet{ContentType: "binary", Body: []byte("second")})
	c.expectMessage(t, websocket.BinaryMessage, "second")
	c.EnableWriteCompression(true)
	must(t, c.WriteMessage(websocket.TextMessage, []byte(text)))
	must(t, c.WriteMessage(websocket.TextMessage, []byte("again")))
	var in []byte
	var credits int64
	for msgs := 0; msgs < 2; {
		p := f.laterOf(c.id)
		if p.Type == zhttp.Credit {
			credits += p.Credits
			continue
		}
		in = append(in, p.Body...)
		if !p.More {
			msgs++
		}
	}
	check(t, "inflated", string(in), text+"again")
	for credits < int64(len(text)+6) {
		credits += f.laterOf(c.id).Credits
	}
	check(t, "credits (uncompressed)", credits, len(text)+6)
}

// A data packet with a list-form id reaches every WebSocket session.
func TestWebSocketMultiData(t *testing.T) {
	t.Parallel()
	ours(t, "multi-data is our extension")
	base, addr := startServer(t, nil)
	f := newFakeServer(t, base, "fakehandler", true)
	var cs []*wsClient
	for i := 0; i < 30; i++ {
		cs = append(cs, openWS(t, f, addr, "/ws", wsOpts{credits: 1000}))
	}
	if !cs[0].first.Ext.MultiData {
		t.Fatal("request packet does not announce multi-data")
	}
	for round := 1; round <= 3; round++ {
		var ids []zhttp.IDSeq
		for _, c := range cs {
			ids = append(ids, zhttp.IDSeq{ID: c.id, Seq: c.seq})
			c.seq++
		}
		msg := fmt.Sprintf("published %d", round)
		f.send(&zhttp.Packet{IDs: ids, Ext: zhttp.Ext{Multi: true}, ContentType: "text", Body: []byte(msg)})
		for _, c := range cs {
			c.expectMessage(t, websocket.TextMessage, msg)
		}
		seen := f.credits(len(cs))
		for _, c := range cs {
			if seen[c.id].total != int64(len(msg)) {
				t.Fatalf("credits for %s: %+v", c.id, seen[c.id])
			}
		}
	}
}

// A client compressing with context takeover (no client_no_context_takeover
// offered) may refer back to earlier messages: the window is kept.
func TestWebSocketCompressionContextTakeover(t *testing.T) {
	t.Parallel()
	ours(t, "timing overrides")
	base, addr := startServer(t, func(c *Config) { c.Compression = true })
	f := newFakeServer(t, base, "fakeproxy", true)
	c, br := dial(t, addr)
	_, _ = c.Write([]byte("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"))
	p := f.first()
	f.send(&zhttp.Packet{ID: p.ID, Seq: 0, Code: 101, HasCode: true, HasHeaders: true, Credits: 100000, HasCredits: true})
	head := readHead(t, br)
	if !strings.Contains(head, "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n") {
		t.Fatalf("head %q", head)
	}
	var zb bytes.Buffer
	zw, _ := flate.NewWriter(&zb, flate.BestCompression)
	msgs := []string{strings.Repeat("the quick brown fox ", 50), strings.Repeat("the quick brown fox ", 50) + "!"}
	for _, m := range msgs {
		zb.Reset()
		_, _ = zw.Write([]byte(m))
		must(t, zw.Flush())
		payload := bytes.TrimSuffix(zb.Bytes(), []byte{0, 0, 0xff, 0xff})
		fr := ws.NewFrame(ws.OpText, true, payload)
		fr.Header.Rsv = ws.Rsv(true, false, false)
		var b bytes.Buffer
		must(t, ws.WriteFrame(&b, ws.MaskFrame(fr)))
		_, err := c.Write(b.Bytes())
		must(t, err)
	}
	if zb.Len() > 20 {
		t.Fatalf("second message compressed to %d bytes: no back-reference to test", zb.Len())
	}
	for _, m := range msgs {
		var in []byte
		for {
			q := f.laterOf(p.ID)
			if q.Type == zhttp.Credit {
				continue
			}
			in = append(in, q.Body...)
			if !q.More {
				break
			}
		}
		check(t, "inflated", string(in), m)
	}
}

// A client that does not read: once the socket is full, what the server
// may still send is bounded by our credits in bytes and by --messages-max
// in messages (empty messages cost no credits); one more closes.
func TestWebSocketMessagesMax(t *testing.T) {
	t.Parallel()
	ours(t, "condure counts the messages waiting for room in its 8 KB write buffer; we count the frames waiting for the socket")
	base, addr := startServer(t, nil)
	f := newFakeServer(t, base, "fakeproxy", true)
	d := &websocket.Dialer{NetDial: func(network, a string) (net.Conn, error) {
		c, err := net.Dial(network, a)
		if err == nil {
			_ = c.(*net.TCPConn).SetReadBuffer(4096)
		}
		return c, err
	}}
	c := openWS(t, f, addr, "/ws", wsOpts{credits: 1000, dialer: d})
	// Fill the socket: 8000-byte messages while their credits come back.
	chunk := bytes.Repeat([]byte("x"), 8000)
	credits := int64(DefaultBufferSize)
	for {
		if credits >= int64(len(chunk)) {
			c.to(f, &zhttp.Packet{ContentType: "binary", Body: chunk})
			credits -= int64(len(chunk))
		}
		msg, err := recvWithin(f.router, 500*time.Millisecond)
		if err != nil {
			break // no credits: the message is (partly) kept
		}
		p, _ := zhttp.ParseMessage(msg[2])
		switch p.Type {
		case zhttp.Credit:
			credits += p.Credits
		case zhttp.KeepAlive:
		default:
			t.Fatalf("got %+v", p)
		}
	}
	for i := 0; i < DefaultMessagesMax+1; i++ {
		c.to(f, &zhttp.Packet{ContentType: "text"})
	}
	for {
		if p := f.laterOf(c.id); p.Type == zhttp.Cancel {
			break
		}
	}
}
