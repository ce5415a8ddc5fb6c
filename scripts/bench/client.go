package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// hold is one held streaming connection opened from the tool's own process:
// the readiness check uses it; the load goes through the worker processes
// (fleet.go).
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

// publisher posts publish requests to the handler's HTTP API.
type publisher struct {
	url    string
	client *http.Client
	ws     bool // publish in the ws-message format (text), not http-stream
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
		format := "http-stream"
		if p.ws {
			format = "ws-message"
		}
		fmt.Fprintf(&b, `{"channel":%s,"formats":{%q:{"content":%s}}}`,
			strconv.Quote(it.channel), format, strconv.Quote(it.content))
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

// frame wraps a line for the mode: one line for plain streams, one event
// for SSE, one message (the line alone) for WebSocket.
func frame(mode, line string) string {
	switch mode {
	case "sse":
		return "event: m\ndata: " + line + "\n\n"
	case "ws":
		return line
	}
	return line + "\n"
}

// parseLine classifies one received line (with or without its "\n"):
// probe, numbered message, or other (SSE "event:" lines, blank separators).
// It runs once per delivered message in the receiving clients, so it parses
// the bytes in place rather than through strconv.
func parseLine(line []byte) (probe bool, seq int, sent int64, ok bool) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	line = bytes.TrimPrefix(line, []byte("data: "))
	if len(line) == len(probeLine) && string(line) == probeLine {
		return true, 0, 0, false
	}
	rest, found := bytes.CutPrefix(line, []byte("m "))
	if !found {
		return false, 0, 0, false
	}
	a, b, found := bytes.Cut(rest, []byte(" "))
	if !found {
		return false, 0, 0, false
	}
	s, ok1 := parseDigits(a)
	t, ok2 := parseDigits(b)
	if !ok1 || !ok2 || s > math.MaxInt32 {
		return false, 0, 0, false
	}
	return false, int(s), t, true
}

// parseDigits reads a non-negative decimal that fits in an int64.
func parseDigits(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' || v > (math.MaxInt64-int64(c-'0'))/10 {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}
