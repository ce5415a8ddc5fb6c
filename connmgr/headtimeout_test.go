package connmgr

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pushpin-go/pushpin/internal/testwait"
)

// 1,000 slowloris clients (a partial request head, then another byte of
// it, or nothing at all) are closed once the header timeout passes, the
// partial ones with a 408, while a normal client is served meanwhile and
// its idle keep-alive connection (a complete request behind it) outlives
// the header timeout. Goroutines and fds come back to what they were.
func TestSlowlorisClosedAfterHeaderTimeout(t *testing.T) {
	ours(t, "condure has no header timeout")
	const n = 1000
	const headerTimeout = time.Second
	base, addr := startServer(t, func(c *Config) { c.HeaderTimeout, c.Sweep = headerTimeout, 100*time.Millisecond })
	f := newFakeServer(t, base, "fakeproxy", true)
	normal := rawDial(t, addr)
	defer normal.close()
	normal.request(t, f, "first")
	g0, fd0 := runtime.NumGoroutine(), openFDs(t)

	start := time.Now()
	slow := make([]rawClient, n)
	for i := range slow {
		slow[i] = rawDial(t, addr)
		if i%10 != 0 { // every tenth sends nothing at all
			if _, err := rawWrite(slow[i], "GET /slow HTTP/1.1\r\nHost: h\r\n"); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Served while they wait; then one more byte of each partial head,
	// which must not move its deadline.
	normal.request(t, f, "second")
	for i, c := range slow {
		if i%10 != 0 {
			_, _ = rawWrite(c, "X") // may find it closed already on a slow machine
		}
	}
	var got408 int
	for i, c := range slow {
		out, err := readToEnd(c)
		if err != nil {
			t.Fatalf("slow client %d: %v after %q (not closed)", i, err, out)
		}
		if out != "" {
			if !strings.HasPrefix(out, "HTTP/1.1 408 Request Timeout\r\n") {
				t.Fatalf("slow client %d got %q", i, out)
			}
			got408++
		}
		c.close()
	}
	t.Logf("%d slow clients closed %v after the first connected (header timeout %v, sweep 100ms); %d got a 408",
		n, time.Since(start).Round(time.Millisecond), headerTimeout, got408)
	if got408 == 0 {
		t.Fatal("no partial head was answered with a 408")
	}
	// Idle longer than the header timeout between requests: still served.
	normal.request(t, f, "third")
	testwait.For(t, 5*time.Second, func() error {
		if g, fd := runtime.NumGoroutine(), openFDs(t); g > g0 || fd > fd0 {
			return fmt.Errorf("goroutines %d (before %d), fds %d (before %d)", g, g0, fd, fd0)
		}
		return nil
	})
}

// readToEnd reads until the server closes (EOF, or a reset after the
// client wrote to a closed connection); an error if it stays open past
// the socket's receive timeout.
func readToEnd(c rawClient) (string, error) {
	var out []byte
	buf := make([]byte, 512)
	for {
		k, err := unix.Read(int(c), buf)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.ECONNRESET || k == 0 && err == nil:
			return string(out), nil
		case err != nil:
			return string(out), err
		}
		out = append(out, buf[:k]...)
	}
}
