package connmgr

import (
	"strings"
	"testing"
	"time"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// goneConfig sends keep-alives often, so a packet soon goes to a server
// that left, while sessions expire only after a minute: a session ended
// within seconds was ended by the drop, not by expiry.
func goneConfig(c *Config) {
	c.KeepAlive, c.Sweep, c.SessionTimeout = 200*time.Millisecond, 50*time.Millisecond, time.Minute
}

// A server that leaves while a request waits for its response: the first
// packet to it that is dropped ends the session, and the client gets a
// 502 at once instead of waiting for the session to expire.
func TestGoneServerSessionGets502(t *testing.T) {
	t.Parallel()
	ours(t, "condure waits for the session to expire")
	base, addr := startServer(t, goneConfig)
	f := newFakeServer(t, base, "goneproxy", true)
	c, br := dial(t, addr)
	_, _ = c.Write([]byte("GET /wait HTTP/1.1\r\nHost: h\r\n\r\n"))
	p := f.first()
	// The server takes the session (it is now the one packets go to) and
	// gets a keep-alive: the connection manager has reached it.
	f.send(&zhttp.Packet{ID: p.ID, Seq: 0, Type: zhttp.KeepAlive})
	check(t, "keep-alive", f.later().Type, zhttp.KeepAlive)
	f.router.Close()
	start := time.Now()
	head := readHead(t, br)
	if !strings.HasPrefix(head, "HTTP/1.1 502 ") {
		t.Fatalf("got %q, want a 502", head)
	}
	t.Logf("502 after %v", time.Since(start).Round(time.Millisecond))
}

// A server that leaves while it streams a response: the connection is
// closed once a packet to it is dropped, with no last chunk (the stream
// was cut short, it must not look complete).
func TestGoneServerStreamClosed(t *testing.T) {
	t.Parallel()
	ours(t, "condure waits for the session to expire")
	base, addr := startServer(t, goneConfig)
	f := newFakeServer(t, base, "gonehandler", true)
	c, br := dial(t, addr)
	_, _ = c.Write([]byte("GET /stream HTTP/1.1\r\nHost: h\r\n\r\n"))
	p := f.first()
	f.send(&zhttp.Packet{ID: p.ID, Seq: 0, Code: 200, HasCode: true, Reason: "OK", HasHeaders: true, More: true, Body: []byte("x")})
	if head := readHead(t, br); !strings.HasPrefix(head, "HTTP/1.1 200 OK\r\n") || !strings.Contains(head, "Transfer-Encoding: chunked") {
		t.Fatalf("head %q", head)
	}
	check(t, "chunk", readN(t, br, 6), "1\r\nx\r\n")
	f.router.Close()
	expectEOF(t, br)
}
