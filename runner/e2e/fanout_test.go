package e2e

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushpin-go/pushpin/internal/testwait"
)

// 1,000 stream subscribers on one channel each receive 100 published
// messages, in order, none lost.
func TestFanout1000x100(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	forEachStack(t, func(t *testing.T, tr tiers) {
		const subs, msgs = 1000, 100
		be := newGripBackend(t)
		s := tr.start(t, fmt.Sprintf("* localhost:%d", be.port()))
		s.waitReady(t, "/plain")
		openStreamExpect(t, s.Client, s.url("/stream?ch=probe"), "stream open\n")

		var probed, finished atomic.Int64
		errs := make(chan error, subs)
		var wg sync.WaitGroup
		addr := fmt.Sprintf("127.0.0.1:%d", s.HTTPPort)
		for i := 0; i < subs; i++ {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatalf("subscriber %d: %v", i, err)
			}
			t.Cleanup(func() { c.Close() })
			fmt.Fprintf(c, "GET /stream?ch=fan HTTP/1.1\r\nHost: localhost\r\n\r\n")
			wg.Add(1)
			go func(c net.Conn) {
				defer wg.Done()
				errs <- readFanout(c, msgs, &probed)
				finished.Add(1)
			}(c)
		}
		// Subscriptions are registered asynchronously: probe until every
		// subscriber has seen one, then publish the numbered messages.
		var lastProbe time.Time
		testwait.For(t, 60*time.Second, func() error {
			if n := probed.Load(); n < subs {
				if time.Since(lastProbe) >= 200*time.Millisecond { // a probe reaches all within this
					s.publish(t, `{"items":[{"channel":"fan","formats":{"http-stream":{"content":"probe\n"}}}]}`)
					lastProbe = time.Now()
				}
				return fmt.Errorf("only %d of %d subscribers reached", n, subs)
			}
			return nil
		})
		for m := 0; m < msgs; m++ {
			s.publish(t, fmt.Sprintf(`{"items":[{"channel":"fan","formats":{"http-stream":{"content":"msg %d\n"}}}]}`, m))
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(120 * time.Second):
			t.Fatalf("only %d of %d subscribers got all messages", finished.Load(), subs)
		}
		close(errs)
		bad := 0
		for err := range errs {
			if err != nil {
				if bad < 5 {
					t.Error(err)
				}
				bad++
			}
		}
		if bad > 0 {
			t.Fatalf("%d of %d subscribers failed", bad, subs)
		}
	}, allOurs, realEdgesOurs)
}

// readFanout reads a chunked stream: the initial body, probes, then msgs
// numbered lines in order.
func readFanout(c net.Conn, msgs int, probed *atomic.Int64) error {
	_ = c.SetReadDeadline(time.Now().Add(180 * time.Second))
	br := bufio.NewReader(c)
	status, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 200") {
		return fmt.Errorf("status %q: %v", status, err)
	}
	for { // headers
		l, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if l == "\r\n" {
			break
		}
	}
	next, seenProbe := 0, false
	for next < msgs {
		// chunk-size line, data, CRLF; our content is one line per chunk.
		size, err := br.ReadString('\n')
		if err != nil {
			return fmt.Errorf("after msg %d: %v", next, err)
		}
		var n int
		if _, err := fmt.Sscanf(strings.TrimSpace(size), "%x", &n); err != nil {
			return fmt.Errorf("bad chunk size %q", size)
		}
		if n == 0 {
			return fmt.Errorf("stream ended after msg %d", next)
		}
		buf := make([]byte, n+2)
		if _, err := readFull(br, buf); err != nil {
			return err
		}
		for _, line := range strings.SplitAfter(string(buf[:n]), "\n") {
			switch {
			case line == "" || line == "stream open\n":
			case line == "probe\n":
				if next > 0 {
					return fmt.Errorf("probe after msg %d", next-1)
				}
				if !seenProbe {
					seenProbe = true
					probed.Add(1)
				}
			case line == fmt.Sprintf("msg %d\n", next):
				next++
			default:
				return fmt.Errorf("got %q, want msg %d", line, next)
			}
		}
	}
	return nil
}

func readFull(br *bufio.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := br.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
