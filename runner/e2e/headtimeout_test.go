package e2e

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// [runner] client_header_timeout reaches our connection manager: through
// the real runner, a client that sends part of a request head and then
// nothing is answered 408 and closed once the timeout passes, while a
// normal request is served meanwhile.
func TestRunnerClientHeaderTimeout(t *testing.T) {
	t.Parallel()
	s := newStack(t, "* test")
	s.RunnerConf = "client_header_timeout=1\n"
	s.write(t)
	s.startRunner(t)
	s.waitReady(t, "/")
	slow, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.HTTPPort))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if _, err := slow.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	expectTestRoute(t, s, "GET / while a client is slow")
	_ = slow.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(slow) // until the server closes
	if err != nil || !strings.HasPrefix(string(got), "HTTP/1.1 408 ") {
		t.Fatalf("partial head got %q (%v), want a 408 and a close", got, err)
	}
}
