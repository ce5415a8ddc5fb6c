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
	const n = 2000
	base, addr := startServer(t, nil)
	f := newFakeServer(t, base, "fakeproxy", true)
	warm := rawDial(t, addr)
	warm.wsHold(t, f)
	warm.close()
	for f.later().Type != zhttp.Cancel {
	}
	g0, _ := steadyCounts(t)
	h0, s0 := memInUse()
	r0 := rss(t)
	clients := make([]rawClient, 0, n)
	defer func() {
		for _, c := range clients {
			c.close()
		}
	}()
	for i := 0; i < n; i++ {
		c := rawDial(t, addr)
		clients = append(clients, c)
		c.wsHold(t, f)
	}
	g1, _ := steadyCounts(t)
	h1, s1 := memInUse()
	heap := (float64(h1) - float64(h0)) / n
	stack := (float64(s1) - float64(s0)) / n
	t.Logf("per idle WebSocket: heap %.0f B, stack %.0f B, total %.0f B; goroutines %.3f; process RSS %+.0f B",
		heap, stack, heap+stack, float64(g1-g0)/n, (rss(t)-r0)/n)
	if g1-g0 > 10 {
		t.Errorf("%d more goroutines for %d WebSockets: connections must not own goroutines", g1-g0, n)
	}
	if heap > 1536 {
		t.Errorf("heap per idle WebSocket %.0f B: more than a held stream's ~1 KB (buffers held?)", heap)
	}
}
