package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// rawClient is an HTTP client on a raw TCP connection: we choose every
// request byte, and keep every response byte for the transcript.
type rawClient struct {
	conn net.Conn
	br   *bufio.Reader
	seen bytes.Buffer
}

type teeConn struct {
	net.Conn
	w *bytes.Buffer // cannot fail
}

func (t teeConn) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	t.w.Write(p[:n])
	return n, err
}

func dialClient(addr string) (*rawClient, error) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", addr, err)
	}
	c := &rawClient{conn: conn}
	c.br = bufio.NewReader(teeConn{Conn: conn, w: &c.seen})
	return c, nil
}

func (c *rawClient) write(s string) error {
	_ = c.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c.conn, s); err != nil {
		return fmt.Errorf("writing request: %w", err)
	}
	return nil
}

// readResponse reads one full response and returns the raw bytes received
// while doing so.
func (c *rawClient) readResponse(method string) (string, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	c.seen.Reset()
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		return c.seen.String(), fmt.Errorf("reading response: %w", err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return c.seen.String(), fmt.Errorf("reading response body: %w", err)
	}
	return c.seen.String(), nil
}

// readFor returns whatever arrives within d (for non-HTTP data such as
// WebSocket frames).
func (c *rawClient) readFor(d time.Duration) []byte {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	n, _ := c.br.Read(buf)
	return buf[:n]
}

func (c *rawClient) close() { c.conn.Close() }

// wsFrame builds a masked client WebSocket frame with a short payload.
func wsFrame(opcode byte, payload []byte) []byte {
	mask := [4]byte{0x11, 0x22, 0x33, 0x44}
	b := []byte{0x80 | opcode, 0x80 | byte(len(payload))}
	b = append(b, mask[:]...)
	for i, c := range payload {
		b = append(b, c^mask[i%4])
	}
	return b
}
