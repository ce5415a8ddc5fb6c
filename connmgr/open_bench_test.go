package connmgr

import (
	"context"
	"io"
	"net"
	"testing"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// BenchmarkOpenHeld opens held streams from parallel clients: connect,
// request, the server's streaming head, read it, close. One op is one
// stream opened (and, on close, cancelled).
func BenchmarkOpenHeld(b *testing.B) {
	base, addr := startServer(b, func(c *Config) { c.MaxConn = 100000 })
	f := newFakeServer(b, base, "fakehandler", true)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{}, 2)
	b.Cleanup(func() { cancel(); <-stopped; <-stopped })
	// The server side: one goroutine answers first packets (it owns PULL
	// and XPUB from here on), another drains the ROUTER.
	go func() {
		defer func() { stopped <- struct{}{} }()
		for ctx.Err() == nil {
			msg, err := f.pull.Recv()
			if err != nil {
				continue
			}
			p, err := zhttp.ParseMessage(msg[0])
			if err != nil {
				continue
			}
			h := &zhttp.Packet{From: f.id, ID: p.ID, Seq: 0, HasSeq: true, Ext: zhttp.Ext{Multi: true}, Code: 200, HasCode: true,
				Reason: "OK", HasHeaders: true, More: true}
			_ = f.pub.Send(h.AppendPub(nil, "condure"))
		}
	}()
	go func() {
		defer func() { stopped <- struct{}{} }()
		for ctx.Err() == nil {
			_, _ = f.router.Recv()
		}
	}()
	req := []byte("GET /stream HTTP/1.1\r\nHost: h\r\n\r\n")
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, len(streamHead))
		for pb.Next() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = c.Write(req)
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != streamHead {
				b.Errorf("head %q: %v", buf, err)
			}
			c.Close()
		}
	})
}
