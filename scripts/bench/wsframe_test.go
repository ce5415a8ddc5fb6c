package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

// wsEvents records what a wsReader hands out, as text.
type wsEvents struct{ got []string }

func (s *wsEvents) bodyLine(b []byte) { s.got = append(s.got, "msg "+string(b)) }
func (s *wsEvents) wsPing(p []byte)   { s.got = append(s.got, "ping "+string(p)) }
func (s *wsEvents) wsClose(code ws.StatusCode, reason []byte) {
	s.got = append(s.got, fmt.Sprintf("close %d %s", code, reason))
}

// wsFeedAll feeds the pieces to one reader and returns the events and the
// first error.
func wsFeedAll(pieces ...[]byte) ([]string, error) {
	var r wsReader
	var s wsEvents
	for _, b := range pieces {
		if err := r.feed(b, &s); err != nil {
			return s.got, err
		}
	}
	return s.got, nil
}

// serverFrames encodes frames as a server sends them (unmasked), with
// gobwas/ws's writer.
func serverFrames(t testing.TB, frames ...ws.Frame) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, f := range frames {
		if err := ws.WriteFrame(&b, f); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// A session's worth of frames: the welcome, a ping, a message fragmented
// with a ping between its fragments, binary and empty messages, 16- and
// 64-bit lengths, a first line too long to keep, and the close.
func wsSample(t testing.TB) ([]byte, []string) {
	big := []byte("m 2 3\n" + strings.Repeat("x", 70000))
	kb := []byte("m 1 1700000000000000006\n" + strings.Repeat("y", 1000))
	raw := serverFrames(t,
		ws.NewTextFrame([]byte("ok")),
		ws.NewPingFrame([]byte("are you there")),
		ws.NewFrame(ws.OpText, false, []byte("m 0 17")),
		ws.NewPingFrame(nil),
		ws.NewFrame(ws.OpContinuation, false, []byte("00000000000000005")),
		ws.NewFrame(ws.OpContinuation, true, []byte("\nrest of it")),
		ws.NewBinaryFrame([]byte("p")),
		ws.NewTextFrame(nil),
		ws.NewTextFrame(kb),
		ws.NewTextFrame(big),
		ws.NewTextFrame([]byte(strings.Repeat("z", lineMax+1))),
		ws.NewPongFrame([]byte("unasked")),
		ws.NewCloseFrame(ws.NewCloseFrameBody(1008, "client cannot keep up")),
		ws.NewTextFrame([]byte("after the close: ignored")),
	)
	want := []string{"msg ok", "ping are you there", "ping ", "msg m 0 1700000000000000005", "msg p", "msg ",
		"msg m 1 1700000000000000006", "msg m 2 3", "close 1008 client cannot keep up"}
	return raw, want
}

func TestWSReaderAtEverySplit(t *testing.T) {
	raw, want := wsSample(t)
	check := func(how string, got []string, err error) {
		t.Helper()
		if !errors.Is(err, errWSClosed) || strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("%s: %q, %v", how, got, err)
		}
	}
	got, err := wsFeedAll(raw)
	check("whole", got, err)
	for i := 1; i < len(raw); i++ {
		got, err := wsFeedAll(raw[:i], raw[i:])
		check(fmt.Sprintf("split at %d", i), got, err)
	}
	var bytewise [][]byte
	for i := range raw {
		bytewise = append(bytewise, raw[i:i+1])
	}
	got, err = wsFeedAll(bytewise...)
	check("byte by byte", got, err)
}

func TestWSReaderRejects(t *testing.T) {
	masked := ws.MaskFrameInPlace(ws.NewTextFrame([]byte("hi")))
	rsv := ws.NewTextFrame([]byte("hi"))
	rsv.Header.Rsv = ws.Rsv(true, false, false)
	reserved := ws.NewFrame(ws.OpCode(3), true, nil)
	for name, raw := range map[string][]byte{
		"masked":                     serverFrames(t, masked),
		"rsv":                        serverFrames(t, rsv),
		"reserved opcode":            serverFrames(t, reserved),
		"fragmented ping":            serverFrames(t, ws.NewFrame(ws.OpPing, false, nil)),
		"ping over 125":              serverFrames(t, ws.NewPingFrame(make([]byte, 126))),
		"continuation first":         serverFrames(t, ws.NewFrame(ws.OpContinuation, true, []byte("x"))),
		"message inside message":     serverFrames(t, ws.NewFrame(ws.OpText, false, []byte("a")), ws.NewTextFrame([]byte("b"))),
		"close of 1 byte":            serverFrames(t, ws.NewCloseFrame([]byte{3})),
		"64-bit length with its MSB": {0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 1},
		"over 16 MiB":                {0x81, 127, 0, 0, 0, 0, 1, 0, 0, 1},
	} {
		_, err := wsFeedAll(raw)
		if err == nil || errors.Is(err, errWSClosed) {
			t.Errorf("%s: %v, want a framing error", name, err)
		}
	}
}

// The client's frames are masked and read back as what was meant.
func TestWSClientFrames(t *testing.T) {
	for _, c := range []struct {
		raw  []byte
		op   ws.OpCode
		want []byte
	}{
		{wsCloseFrame(1000), ws.OpClose, ws.NewCloseFrameBody(1000, "")},
		{wsCloseFrame(0), ws.OpClose, nil},
		{wsClientFrame(ws.OpPong, []byte("are you there")), ws.OpPong, []byte("are you there")},
	} {
		f, err := ws.ReadFrame(bytes.NewReader(c.raw)) //nolint:staticcheck // our own small frames: reading them whole is the point
		if err != nil {
			t.Fatal(err)
		}
		f = ws.UnmaskFrameInPlace(f)
		if !f.Header.Fin || f.Header.OpCode != c.op || !bytes.Equal(f.Payload, c.want) {
			t.Fatalf("%x: header %+v payload %q", c.raw, f.Header, f.Payload)
		}
		if !bytes.Equal(c.raw[:1], []byte{0x80 | byte(c.op)}) || c.raw[1]&0x80 == 0 {
			t.Fatalf("%x: not a masked final frame", c.raw)
		}
	}
}

func TestWSHandshake(t *testing.T) {
	// RFC 6455 §1.3's example.
	if got := wsAccept("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("accept %q", got)
	}
	req := wsHandshake("/ws/x?ch=a")
	if !strings.HasPrefix(req, "GET /ws/x?ch=a HTTP/1.1\r\n") || !strings.Contains(req, "Sec-WebSocket-Key: "+wsKey+"\r\n") ||
		!strings.HasSuffix(req, "\r\n\r\n") {
		t.Fatalf("request %q", req)
	}
	good := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		wsAccept(wsKey) + "\r\n\r\n"
	var p respParser
	p.upgrade = true
	raw := append([]byte(good), serverFrames(t, ws.NewTextFrame([]byte("ok")))...)
	n, err := p.feedHead(raw)
	if err != nil || p.phase != phBody || n != len(good) {
		t.Fatalf("good head: used %d of %d, %v", n, len(good), err)
	}
	for _, bad := range []string{
		"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		strings.Replace(good, wsAccept(wsKey), "bm9wZQ==", 1),
		strings.Replace(good, "Upgrade: WebSocket\r\n", "", 1),
	} {
		p := respParser{upgrade: true}
		if _, err := p.feedHead([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// Any input gives the same events and outcome whether it arrives whole or
// split in two at any byte.
func FuzzWSReader(f *testing.F) {
	raw, _ := wsSample(f)
	f.Add(raw, uint16(7))
	f.Add([]byte{0x81, 126, 0, 2, 'o', 'k', 0x88, 0}, uint16(3))
	f.Add([]byte{0x01, 1, 'a', 0x89, 0, 0x80, 1, 'b'}, uint16(1))
	f.Fuzz(func(t *testing.T, raw []byte, at uint16) {
		want, werr := wsFeedAll(raw)
		splits := []int{int(at) % (len(raw) + 1), len(raw) / 2}
		if len(raw) <= 512 { // every byte; longer inputs at two points
			splits = splits[:0]
			for i := range len(raw) + 1 {
				splits = append(splits, i)
			}
		}
		for _, i := range splits {
			got, err := wsFeedAll(raw[:i], raw[i:])
			if (err == nil) != (werr == nil) || errors.Is(err, errWSClosed) != errors.Is(werr, errWSClosed) ||
				strings.Join(got, "|") != strings.Join(want, "|") {
				t.Fatalf("split at %d: %q, %v; whole: %q, %v", i, got, err, want, werr)
			}
		}
	})
}
