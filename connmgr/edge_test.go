package connmgr

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// The epoll registration is edge-triggered: input the connection read
// only part of (the buffer filled) or did not want yet (the body waits
// for credits) gets no second edge and must still be read. A body of
// several buffers, all sent before any credit, then a pipelined request
// that arrives while the body is still held back.
func TestEdgeTriggeredInputNotLost(t *testing.T) {
	t.Parallel()
	ours(t, "buffer size override")
	const bufSize = 1024
	base, addr := startServer(t, func(c *Config) { c.BufferSize = bufSize })
	f := newFakeServer(t, base, "fakeproxy", true)
	c, br := dial(t, addr)
	body := strings.Repeat("0123456789abcdef", 4*bufSize/16)
	_, _ = c.Write([]byte("POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body))
	p := f.first()
	time.Sleep(50 * time.Millisecond) // the client's input is all in, the buffer full
	got := ""
	seq := int64(0)
	grant := func() {
		f.send(&zhttp.Packet{ID: p.ID, Seq: seq, Type: zhttp.Credit, Credits: bufSize / 2, HasCredits: true})
		seq++
	}
	grant()
	for i := 0; len(got) < len(body); i++ {
		q := f.laterData()
		got += string(q.Body)
		if i == 1 {
			// Arrives while the body is still waiting for credits.
			_, _ = c.Write([]byte("GET /next HTTP/1.1\r\nHost: h\r\n\r\n"))
			time.Sleep(20 * time.Millisecond)
		}
		if q.More && len(got)%(bufSize/2) == 0 {
			grant()
		}
	}
	check(t, "body", got == body, true)
	f.send(&zhttp.Packet{ID: p.ID, Seq: seq, Code: 200, HasCode: true, Reason: "OK", HasHeaders: true})
	check(t, "response", readHead(t, br), "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	n := f.first()
	check(t, "pipelined", n.URI, "http://h/next")
	f.send(&zhttp.Packet{ID: n.ID, Seq: 0, Code: 200, HasCode: true, Reason: "OK", HasHeaders: true, Body: []byte("ok")})
	check(t, "second response", readHead(t, br), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
}
