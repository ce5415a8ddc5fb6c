package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushpin-go/pushpin/internal/testwait"
)

// proxiedLoad runs workers that POST to /plain in a loop (the body goes
// out on the connection manager's ROUTER), recording failures and the
// worst latency.
type proxiedLoad struct {
	ok, failed atomic.Int64
	stopped    atomic.Bool
	wg         sync.WaitGroup
	mu         sync.Mutex
	worst      time.Duration
	firstErr   error
}

func startProxiedLoad(t *testing.T, s *stack, workers int, timeout time.Duration) *proxiedLoad {
	ld := &proxiedLoad{}
	client := &http.Client{Timeout: timeout, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	t.Cleanup(func() {
		n, failed, worst := ld.stop()
		client.CloseIdleConnections()
		if t.Failed() {
			t.Logf("proxied load: %d ok, %d failed, worst latency %v (client timeout %v)", n, failed, worst.Round(time.Millisecond), timeout)
		}
	})
	for w := range workers {
		ld.wg.Add(1)
		go func() {
			defer ld.wg.Done()
			for i := 0; !ld.stopped.Load(); i++ {
				body := fmt.Sprintf("w%d-%d", w, i)
				start := time.Now()
				err := postPlain(client, s.url("/plain"), body)
				el := time.Since(start)
				ld.mu.Lock()
				ld.worst = max(ld.worst, el)
				if err != nil && ld.firstErr == nil {
					ld.firstErr = err
				}
				ld.mu.Unlock()
				if err != nil {
					ld.failed.Add(1)
				} else {
					ld.ok.Add(1)
				}
			}
		}()
	}
	return ld
}

func postPlain(c *http.Client, url, body string) error {
	resp, err := c.Post(url, "text/plain", strings.NewReader(body))
	if err != nil {
		return err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 || string(b) != "plain response\n"+body {
		return fmt.Errorf("POST %s: %d %q", url, resp.StatusCode, b)
	}
	return nil
}

// waitOK waits until n requests have succeeded (a failed one does not
// count: the test checks those at the end).
func (ld *proxiedLoad) waitOK(t *testing.T, n int64) {
	t.Helper()
	testwait.For(t, 60*time.Second, func() error {
		if got := ld.ok.Load(); got < n {
			return fmt.Errorf("%d of %d proxied requests succeeded (%d failed)", got, n, ld.failed.Load())
		}
		return nil
	})
}

// stop ends the load and returns what it saw.
func (ld *proxiedLoad) stop() (ok, failed int64, worst time.Duration) {
	ld.stopped.Store(true)
	ld.wg.Wait()
	ld.mu.Lock()
	defer ld.mu.Unlock()
	return ld.ok.Load(), ld.failed.Load(), ld.worst
}
