package httpapi

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/rs/zerolog"
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

// The defaults apply when the Server leaves the timeouts zero.
func TestControlServerDefaultTimeouts(t *testing.T) {
	t.Parallel()
	srv := (&Server{}).HTTPServer("")
	if srv.ReadHeaderTimeout != DefaultReadHeaderTimeout || srv.IdleTimeout != DefaultIdleTimeout {
		t.Fatalf("read header timeout %v, idle %v", srv.ReadHeaderTimeout, srv.IdleTimeout)
	}
}
