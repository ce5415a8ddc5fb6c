package e2e

import (
	"bufio"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Connection setup under pressure: 5,000 stream holds (connect, request
// through the proxy to the backend, GRIP hold by the handler, first body
// bytes back) opened with 1,000 in flight, all held at the end. None may
// fail (Pushpin 1.36 failed 1,628 of them in the load tool's connect
// scenario); the time taken is logged, not asserted.
func TestConnectionSetup5000Holds(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const total, inFlight = 5000, 1000
	be := newGripBackend(t)
	s := allOurs.start(t, fmt.Sprintf("* localhost:%d", be.port()))
	s.waitReady(t, "/plain")
	openStreamExpect(t, s.Client, s.url("/stream?ch=probe"), "stream open\n")

	addr := fmt.Sprintf("127.0.0.1:%d", s.HTTPPort)
	var (
		mu       sync.Mutex
		held     []net.Conn
		firstErr error
		failed   atomic.Int64
		wg       sync.WaitGroup
	)
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	sem := make(chan struct{}, inFlight)
	start := time.Now()
	for i := range total {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := openHold(addr, fmt.Sprintf("/stream?ch=setup%d", i))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed.Add(1)
				if firstErr == nil {
					firstErr = fmt.Errorf("hold %d: %w", i, err)
				}
				return
			}
			held = append(held, c)
		}()
	}
	wg.Wait()
	t.Logf("%d holds set up with %d in flight in %v, %d failed", total, inFlight, time.Since(start).Round(time.Millisecond), failed.Load())
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d connection setups failed (first: %v)", n, total, firstErr)
	}
}

// openHold connects, asks for a stream hold and returns the connection
// once the hold's first body line is in.
func openHold(addr, path string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReader(c)
	status, err := br.ReadString('\n')
	if err != nil || len(status) < 12 || status[9:12] != "200" {
		c.Close()
		return nil, fmt.Errorf("status %q: %v", status, err)
	}
	if err := readUntil(br, "stream open\n"); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}
