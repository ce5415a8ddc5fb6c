package main

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

// lines collects what the parser hands out.
type lines struct{ got []string }

func (l *lines) bodyLine(b []byte) { l.got = append(l.got, string(b)) }

// feedAll feeds the pieces in order and returns the lines and the first error.
func feedAll(pieces ...[]byte) ([]string, error) {
	var p respParser
	var l lines
	for _, b := range pieces {
		if err := p.feed(b, &l); err != nil {
			return l.got, err
		}
	}
	return l.got, nil
}

// Frames captured from Pushpin 1.36 (condure) holding /stream and /sse
// after a probe and messages 0 and 1 (ours sends the same bytes).
var capturedWant = map[string][]string{
	"testdata/pushpin-stream.http": {"ok", "p", "m 0 1700000000000000005", "m 1 1700000000000000006"},
	"testdata/pushpin-sse.http": {"ok", "event: m", "data: p", "", "event: m", "data: m 0 1700000000000000005", "",
		"event: m", "data: m 1 1700000000000000006", ""},
}

func TestRespParserCapturedFramesAtEverySplit(t *testing.T) {
	for file, want := range capturedWant {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		check := func(how string, got []string, err error) {
			t.Helper()
			if err != nil || strings.Join(got, "|") != strings.Join(want, "|") {
				t.Fatalf("%s %s: %q, %v", file, how, got, err)
			}
		}
		got, err := feedAll(raw)
		check("whole", got, err)
		for i := 1; i < len(raw); i++ {
			got, err := feedAll(raw[:i], raw[i:])
			check("split", got, err)
		}
		var bytewise [][]byte
		for i := range raw {
			bytewise = append(bytewise, raw[i:i+1])
		}
		got, err = feedAll(bytewise...)
		check("byte by byte", got, err)
	}
}

func TestRespParserCases(t *testing.T) {
	head := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	cases := []struct {
		name, in string
		want     []string
		err      error
	}{
		{"extension and upper hex", head + "3;x=y\r\nok\n\r\nA\r\nm 1 2\nm 3\r\n", []string{"ok", "m 1 2"}, nil},
		{"line across chunks", head + "2\r\nok\r\n2\r\n\nm\r\n3\r\n 1 \r\n2\r\n2\n\r\n", []string{"ok", "m 1 2"}, nil},
		{"last chunk", head + "3\r\nok\n\r\n0\r\n\r\n", []string{"ok"}, errStreamEnd},
		{"last chunk with trailer", head + "3\r\nok\n\r\n0\r\nX-T: 1\r\n\r\n", []string{"ok"}, errStreamEnd},
		{"bare LF framing", head + "3\nok\n\n0\n\n", []string{"ok"}, errStreamEnd},
		{"identity body", "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nok\np\n", []string{"ok", "p"}, nil},
		{"long line dropped", head + "80\r\n" + strings.Repeat("x", 127) + "\n\r\n3\r\nok\n\r\n", []string{"ok"}, nil},
		{"status", "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n", nil, statusError{502}},
		{"bad chunk size", head + "3x\r\n", nil, errBadChunk},
		{"bad chunk end", head + "2\r\nokX", nil, errBadChunk},
		{"bad status line", "HTTP/2 200\r\n\r\n", nil, errBadHead},
		{"not http", "SSH-2.0-OpenSSH\r\n\r\n", nil, errBadHead},
	}
	for _, c := range cases {
		got, err := feedAll([]byte(c.in))
		if !errors.Is(err, c.err) || strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("%s: %q, %v; want %q, %v", c.name, got, err, c.want, c.err)
		}
	}
	if _, err := feedAll([]byte("HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Pad: 1\r\n", 1000))); !errors.Is(err, errBadHead) {
		t.Errorf("endless head: %v", err)
	}
}

// The receivers parse every delivered message: no allocation per message.
func TestRespParserDoesNotAllocate(t *testing.T) {
	var p respParser
	var sink countSink
	head := []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nok\n\r\n")
	if err := p.feed(head, &sink); err != nil {
		t.Fatal(err)
	}
	msg := []byte("18\r\nm 0 1700000000000000005\n\r\n")
	allocs := testing.AllocsPerRun(1000, func() {
		if err := p.feed(msg[:7], &sink); err != nil {
			t.Fatal(err)
		}
		if err := p.feed(msg[7:], &sink); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 || sink.n != 1002 { // 1 + warm-up + 1000 runs
		t.Fatalf("%v allocations per message, %d lines", allocs, sink.n)
	}
}

type countSink struct{ n int }

func (c *countSink) bodyLine(b []byte) {
	c.n++
	parseLine(b)
}

// FuzzRespParser: whatever the bytes, feeding them split at any point gives
// what feeding them whole gives, and no line exceeds lineMax.
func FuzzRespParser(f *testing.F) {
	for file := range capturedWant {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw, uint16(len(raw)/2))
	}
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), uint16(3))
	f.Fuzz(func(t *testing.T, raw []byte, at uint16) {
		whole, errWhole := feedAll(raw)
		i := int(at) % (len(raw) + 1)
		split, errSplit := feedAll(raw[:i], raw[i:])
		if (errWhole == nil) != (errSplit == nil) || strings.Join(whole, "\x00") != strings.Join(split, "\x00") {
			t.Fatalf("split at %d: %q %v, whole: %q %v", i, split, errSplit, whole, errWhole)
		}
		for _, l := range whole {
			if len(l) > lineMax || bytes.ContainsRune([]byte(l), '\n') {
				t.Fatalf("line %q", l)
			}
		}
	})
}
