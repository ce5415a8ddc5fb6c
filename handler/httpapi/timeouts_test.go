package httpapi

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/proto/publish"
)

// serveAPI runs s's HTTP server on a loopback port until the test ends.
func serveAPI(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := s.HTTPServer("")
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// closedByServer reports whether the server closes c (EOF or reset) before
// the test's own 5 s deadline.
func closedByServer(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.ReadAll(c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("connection still open after 5 s")
	}
}

// A client that never finishes its request head, or sends nothing, has its
// connection closed after the header timeout instead of holding it for ever.
func TestUnfinishedRequestHeadIsClosed(t *testing.T) {
	t.Parallel()
	addr := serveAPI(t, &Server{Log: zerolog.Nop(), ReadHeaderTimeout: 200 * time.Millisecond})
	for _, sent := range []string{"POST /publish/ HTTP/1.1\r\nHost: x\r\nContent-Len", ""} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(c, sent); err != nil {
			t.Fatal(err)
		}
		closedByServer(t, c)
		c.Close()
	}
}

// A client that sends its head but never finishes its body has its
// connection closed after the read timeout.
func TestUnfinishedRequestBodyIsClosed(t *testing.T) {
	t.Parallel()
	var published atomic.Bool
	addr := serveAPI(t, &Server{Log: zerolog.Nop(), ReadTimeout: 300 * time.Millisecond,
		Publish: func([]publish.Item) { published.Store(true) }})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "POST /publish/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"items\""); err != nil {
		t.Fatal(err)
	}
	closedByServer(t, c)
	if published.Load() {
		t.Fatal("a partial body was published")
	}
}

// The defaults apply when the Server leaves the timeouts zero.
func TestControlServerDefaultTimeouts(t *testing.T) {
	t.Parallel()
	srv := (&Server{}).HTTPServer("")
	if srv.ReadHeaderTimeout != DefaultReadHeaderTimeout || srv.ReadTimeout != DefaultReadTimeout || srv.IdleTimeout != DefaultIdleTimeout {
		t.Fatalf("read header timeout %v, read %v, idle %v", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.IdleTimeout)
	}
}
