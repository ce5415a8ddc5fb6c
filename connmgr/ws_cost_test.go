package connmgr

import (
	"testing"

	"github.com/gobwas/ws"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// wsHold opens a WebSocket on c and exchanges a message each way, so the
// connection has used (and must have given back) its buffers.
func (c rawClient) wsHold(t *testing.T, f *fakeServer) {
	t.Helper()
	if _, err := rawWrite(c, "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	p := f.first()
	f.send(&zhttp.Packet{ID: p.ID, Seq: 0, Ext: zhttp.Ext{Multi: true}, Code: 101, HasCode: true, Reason: "Switching Protocols",
		HasHeaders: true, Credits: 1000, HasCredits: true})
	f.send(&zhttp.Packet{ID: p.ID, Seq: 1, ContentType: "text", Body: []byte("hi")})
	c.expect(t, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x02hi")
	if _, err := rawWrite(c, string(clientFrame(true, ws.OpText, "hello"))); err != nil {
		t.Fatal(err)
	}
	for {
		if q := f.later(); q.Type == zhttp.Data {
			check(t, "message", string(q.Body), "hello")
			return
		}
	}
}

// TestIdleWebSocketCost holds N open WebSocket connections, idle after a
// message each way, and reports the server-side memory and goroutines per
// connection: like a held stream, no goroutine and no buffer.
func TestIdleWebSocketCost(t *testing.T) {
	ours(t, "measures this process")
	heap := connectionCost(t, "idle WebSocket", "fakeproxy", func(c rawClient, f *fakeServer) {
		c.wsHold(t, f)
	}, true)
	if heap > 1536 {
		t.Errorf("heap per idle WebSocket %.0f B: more than a held stream's ~1 KB (buffers held?)", heap)
	}
}
