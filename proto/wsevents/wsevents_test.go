package wsevents

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Bodies observed between Pushpin 1.36 and a test backend
// (websocket-over-http.md §3-§5), plus the other legal spellings.
var seedBodies = []string{
	"OPEN\r\n",
	"CLOSE 5\r\n\x03\xe8bye\r\n",
	"CLOSE\r\n",
	"DISCONNECT\r\n",
	"TEXT\r\n",
	"TEXT 0\r\n\r\n",
	"TEXT 2\r\nhi\r\n",
	"TEXT 2\r\nhi\r\nTEXT 2\r\nhi\r\nTEXT 2\r\nhi\r\nTEXT 2\r\nhi\r\nTEXT 2\r\nhi\r\n",
	"OPEN\r\nTEXT 2a\r\nc:{\"type\": \"subscribe\", \"channel\": \"test\"}\r\nTEXT 5\r\nhello\r\n",
	"TEXT 6\r\necho: \r\n",
	"BINARY 3\r\n\x00\r\n\r\n",
	"PING\r\nPONG 4\r\nping\r\n",
	"FOO 3\r\nbar\r\nTEXT 1\r\nx\r\n",
}

func TestParse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body string
		want       []Event
		bad        bool
	}{
		{"open", "OPEN\r\n", []Event{{Open, nil}}, false},
		{"empty body", "", nil, false},
		{"empty text short", "TEXT\r\n", []Event{{Text, nil}}, false},
		{"empty text long", "TEXT 0\r\n\r\n", []Event{{Text, []byte{}}}, false},
		{"text", "TEXT 5\r\nhello\r\n", []Event{{Text, []byte("hello")}}, false},
		{"upper hex", "TEXT A\r\n0123456789\r\n", []Event{{Text, []byte("0123456789")}}, false},
		{"lower hex", "BINARY a\r\n0123456789\r\n", []Event{{Binary, []byte("0123456789")}}, false},
		{"leading zeros", "TEXT 0002\r\nhi\r\n", []Event{{Text, []byte("hi")}}, false},
		{"binary safe", "BINARY 4\r\n\r\n\r\n\r\n", []Event{{Binary, []byte("\r\n\r\n")}}, false},
		{"close", "CLOSE 5\r\n\x03\xe8bye\r\n", []Event{{Close, []byte("\x03\xe8bye")}}, false},
		{"unknown skipped", "FOO 3\r\nbar\r\nBAR\r\nPING\r\n", []Event{{Ping, nil}}, false},
		{"lowercase type unknown", "text 1\r\nx\r\n", nil, false},
		{"empty type line", "\r\nOPEN\r\n", []Event{{Open, nil}}, false},
		{"trailer not checked", "TEXT 2\r\nhiXXOPEN\r\n", []Event{{Text, []byte("hi")}, {Open, nil}}, false},
		{"ends after content", "TEXT 2\r\nhi", []Event{{Text, []byte("hi")}}, false},
		{"ends after content and CR", "TEXT 2\r\nhi\r", []Event{{Text, []byte("hi")}}, false},
		{"missing CRLF", "OPEN", nil, true},
		{"missing CRLF after event", "OPEN\r\nTEXT", nil, true},
		{"bare LF", "OPEN\n", nil, true},
		{"bad hex", "TEXT zz\r\nhi\r\n", nil, true},
		{"empty hex", "TEXT \r\n\r\n", nil, true},
		{"signed hex", "TEXT +2\r\nhi\r\n", nil, true},
		{"0x hex", "TEXT 0x2\r\nhi\r\n", nil, true},
		{"double space", "TEXT  2\r\nhi\r\n", nil, true},
		{"huge hex", "TEXT fffffffffffffffff\r\n", nil, true},
		{"content past end", "TEXT 9\r\nhi\r\n", nil, true},
		{"bad after good", "OPEN\r\nTEXT q\r\n", nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			prior := []Event{{Type: Pong}}
			got, err := Parse([]byte(c.body), prior)
			if c.bad {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid", err)
				}
				if len(got) != 1 {
					t.Fatalf("invalid body left %d events, want the caller's 1", len(got))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			assertEvents(t, got[1:], c.want)
		})
	}
}

func assertEvents(t *testing.T, got, want []Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events %q, want %d %q", len(got), got, len(want), want)
	}
	for i := range got {
		if got[i].Type != want[i].Type || !bytes.Equal(got[i].Content, want[i].Content) {
			t.Fatalf("event %d = %v %q, want %v %q", i, got[i].Type, got[i].Content, want[i].Type, want[i].Content)
		}
	}
}

func TestAppend(t *testing.T) {
	t.Parallel()
	cases := []struct {
		t       Type
		content string
		want    string
	}{
		{Open, "", "OPEN\r\n"},
		{Text, "", "TEXT\r\n"},
		{Text, "hello", "TEXT 5\r\nhello\r\n"},
		{Binary, string(make([]byte, 26)), "BINARY 1a\r\n" + string(make([]byte, 26)) + "\r\n"},
		{Ping, "", "PING\r\n"},
		{Pong, "x", "PONG 1\r\nx\r\n"},
		{Disconnect, "", "DISCONNECT\r\n"},
	}
	for _, c := range cases {
		if got := string(Append(nil, c.t, []byte(c.content))); got != c.want {
			t.Errorf("Append(%v, %q) = %q, want %q", c.t, c.content, got, c.want)
		}
	}
	if got := string(AppendClose([]byte("X"), 1000, "bye")); got != "XCLOSE 5\r\n\x03\xe8bye\r\n" {
		t.Errorf("AppendClose = %q", got)
	}
	if got := string(AppendClose(nil, -1, "ignored")); got != "CLOSE\r\n" {
		t.Errorf("AppendClose(-1) = %q", got)
	}
	if got := string(AppendClose(nil, 4000, "")); got != "CLOSE 2\r\n\x0f\xa0\r\n" {
		t.Errorf("AppendClose(4000) = %q", got)
	}
}

func TestCloseCode(t *testing.T) {
	t.Parallel()
	if c, r := CloseCode([]byte("\x03\xe8bye")); c != 1000 || r != "bye" {
		t.Errorf("got %d %q", c, r)
	}
	if c, r := CloseCode([]byte("\x03")); c != -1 || r != "" {
		t.Errorf("1 byte: got %d %q", c, r)
	}
	if c, _ := CloseCode(nil); c != -1 {
		t.Errorf("empty: got %d", c)
	}
}

func TestTypeString(t *testing.T) {
	t.Parallel()
	if Disconnect.String() != "DISCONNECT" || Type(0).String() != "Type(0)" || Type(99).String() != "Type(99)" {
		t.Fatal("Type.String")
	}
}

func TestAppendAndParseDoNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 256)
	evs := make([]Event, 0, 8)
	msg := []byte("hello")
	n := testing.AllocsPerRun(100, func() {
		buf = Append(buf[:0], Text, msg)
		buf = AppendClose(buf, 1000, "bye")
		var err error
		if evs, err = Parse(buf, evs[:0]); err != nil || len(evs) != 2 {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations per run, want 0", n)
	}
}

func BenchmarkAppendParse(b *testing.B) {
	msg := bytes.Repeat([]byte("x"), 1024)
	buf := make([]byte, 0, 64<<10)
	evs := make([]Event, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = buf[:0]
		for range 32 {
			buf = Append(buf, Text, msg)
		}
		evs, _ = Parse(buf, evs[:0])
	}
}

// The bodies Pushpin 1.36 sent for a recorded session (testdata/README.md)
// are what Append produces for the same events, byte for byte.
func TestAppendMatchesPushpinCapture(t *testing.T) {
	t.Parallel()
	ev := func(typ Type, s string) Event { return Event{typ, []byte(s)} }
	want := [][]Event{
		{ev(Open, "")},
		{ev(Text, "hi")},
		{ev(Text, "hold")},
		{ev(Text, "m1"), ev(Text, "m2"), ev(Text, "m3"), ev(Text, "m4"), ev(Text, "m5")},
		{ev(Text, "")},
		{ev(Binary, "\x00\x01\xff\r\n")},
		{ev(Ping, "pp")},
		{ev(Text, "after-ping")},
		{ev(Close, "\x03\xe8bye")},
		{ev(Open, "")},
		{ev(Disconnect, "")},
	}
	for i, evs := range want {
		captured := readCapture(t, i)
		var enc []byte
		for _, e := range evs {
			if e.Type == Close {
				code, reason := CloseCode(e.Content)
				enc = AppendClose(enc, code, reason)
				continue
			}
			enc = Append(enc, e.Type, e.Content)
		}
		if !bytes.Equal(enc, captured) {
			t.Errorf("body %02d: encoded %q, Pushpin sent %q", i, enc, captured)
		}
		got, err := Parse(captured, nil)
		if err != nil {
			t.Fatalf("body %02d: %v", i, err)
		}
		assertEvents(t, got, evs)
	}
}

func readCapture(t testing.TB, i int) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", fmt.Sprintf("pushpin-%02d-request.bin", i)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
