package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// hold is one held streaming connection. It is a raw net.Conn with a small
// reader rather than a net/http client connection: thousands of them must
// stay cheap in the load tool.
type hold struct {
	c    net.Conn
	body *bufio.Reader // de-chunked response body, positioned after "ok\n"
}

// openHold sends a GET and returns once the status is 200 and the backend's
// first line "ok\n" arrived, i.e. the stream hold is established.
func openHold(addr, path string, timeout time.Duration) (*hold, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: bench\r\n\r\n"); err != nil {
		c.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 1024), nil)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("reading response head: %w", err)
	}
	if resp.StatusCode != 200 {
		c.Close()
		return nil, fmt.Errorf("%s: status %d", path, resp.StatusCode)
	}
	body := bufio.NewReaderSize(resp.Body, 512)
	line, err := body.ReadString('\n')
	if err != nil || line != "ok\n" {
		c.Close()
		return nil, fmt.Errorf("%s: first line %q: %v", path, line, err)
	}
	_ = c.SetDeadline(time.Time{})
	return &hold{c: c, body: body}, nil
}

func (h *hold) close() { h.c.Close() }

// openHolds opens n holds with conc dialers; paths gives each one's path.
// It returns the holds opened, each one's open time, and the first error.
func openHolds(ctx context.Context, addr string, n, conc int, path func(i int) string) ([]*hold, []time.Duration, error) {
	holds := make([]*hold, n)
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				h, err := openHold(addr, path(i), 15*time.Second)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("hold %d: %w", i, err)
					}
					mu.Unlock()
					next.Store(int64(n)) // stop the others: the run is broken
					return
				}
				holds[i], lat[i] = h, time.Since(t0)
			}
		}()
	}
	wg.Wait()
	out, outLat := holds[:0], lat[:0]
	for i, h := range holds {
		if h != nil {
			out = append(out, h)
			outLat = append(outLat, lat[i])
		}
	}
	return out, outLat, firstErr
}

func closeHolds(hs []*hold) {
	for _, h := range hs {
		h.close()
	}
}

// publisher posts publish requests to the handler's HTTP API.
type publisher struct {
	url    string
	client *http.Client
}

func newPublisher(url string, conc int) *publisher {
	return &publisher{url: url, client: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc},
	}}
}

// item is one http-stream publish item.
type item struct{ channel, content string }

// post publishes items in one request; anything but 200 is an error.
func (p *publisher) post(items []item) error {
	var b bytes.Buffer
	b.WriteString(`{"items":[`)
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"channel":%s,"formats":{"http-stream":{"content":%s}}}`,
			strconv.Quote(it.channel), strconv.Quote(it.content))
	}
	b.WriteString(`]}`)
	resp, err := p.client.Post(p.url, "application/json", &b)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("publish: status %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}

func (p *publisher) close() { p.client.CloseIdleConnections() }

// Message contents. Each numbered message carries its sequence number and
// its send time, so a receiver measures publish-to-receive latency and
// detects loss, duplicates and reordering on its own.
const probeLine = "p"

func messageLine(seq int, sent time.Time) string {
	return "m " + strconv.Itoa(seq) + " " + strconv.FormatInt(sent.UnixNano(), 10)
}

// frame wraps a line for the mode: one line for plain streams, one event for SSE.
func frame(mode, line string) string {
	if mode == "sse" {
		return "event: m\ndata: " + line + "\n\n"
	}
	return line + "\n"
}

// parseLine classifies one received line: probe, numbered message, or other
// (SSE "event:" lines, blank separators).
func parseLine(line string) (probe bool, seq int, sent int64, ok bool) {
	line = strings.TrimSuffix(line, "\n")
	line = strings.TrimPrefix(line, "data: ")
	if line == probeLine {
		return true, 0, 0, false
	}
	rest, found := strings.CutPrefix(line, "m ")
	if !found {
		return false, 0, 0, false
	}
	a, b, found := strings.Cut(rest, " ")
	if !found {
		return false, 0, 0, false
	}
	s, err1 := strconv.Atoi(a)
	t, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || s < 0 {
		return false, 0, 0, false
	}
	return false, s, t, true
}
