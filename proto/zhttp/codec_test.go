package zhttp

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Frames captured from condure 1.9.1 / Pushpin 1.36 (zhttp.md, tnetstring.md).
var realFrames = []string{
	"T86:4:from,7:condure,2:id,5:1-0-4,3:seq,1:2#3:ext,15:5:multi,4:true!}4:type,10:keep-alive,}",
	"T117:4:from,9:fakeproxy,2:id,5:1-0-2,3:seq,1:0#4:code,3:101#6:reason,19:Switching Protocols,7:headers,0:]7:credits,4:1024#}",
	"T83:4:from,9:fakeproxy,2:id,5:1-0-2,3:seq,1:1#12:content-type,4:text,4:body,8:srv-text,}",
	"T68:4:from,9:fakeproxy,2:id,5:1-0-2,3:seq,1:3#4:type,4:ping,4:body,2:pp,}",
	"T106:4:from,7:condure,2:id,5:1-0-2,3:seq,1:4#3:ext,15:5:multi,4:true!}12:content-type,4:text,4:body,8:cli-text,}",
	"T96:4:from,9:fakeproxy,2:id,5:1-0-2,3:seq,1:4#4:type,5:close,4:code,4:4001#4:body,14:server closing,}",
	"T119:4:from,7:condure,2:id,5:1-0-2,3:seq,1:7#3:ext,15:5:multi,4:true!}4:type,5:close,4:code,4:4001#4:body,14:server closing,}",
}

func seeds(t testing.TB) [][]byte {
	var out [][]byte
	for _, f := range realFrames {
		out = append(out, []byte(f))
	}
	files, _ := filepath.Glob("testdata/*.bin")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, msg, err := SplitPub(b); err == nil && len(msg) > 0 && msg[0] == 'T' && b[0] != 'T' {
			b = msg
		}
		out = append(out, b)
	}
	return out
}

func TestParseRealFrames(t *testing.T) {
	t.Parallel()
	p, err := ParseMessage([]byte(realFrames[0]))
	if err != nil {
		t.Fatal(err)
	}
	want := &Packet{From: "condure", ID: "1-0-4", Seq: 2, HasSeq: true, Type: KeepAlive, Ext: Ext{Multi: true}}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("got %+v\nwant %+v", p, want)
	}
	p, err = ParseMessage([]byte(realFrames[1]))
	if err != nil {
		t.Fatal(err)
	}
	if p.Code != 101 || p.Reason != "Switching Protocols" || !p.HasHeaders || p.Credits != 1024 {
		t.Fatalf("bad accept packet %+v", p)
	}
	p, _ = ParseMessage([]byte(realFrames[5]))
	if p.Type != Close || p.Code != 4001 || string(p.Body) != "server closing" {
		t.Fatalf("bad close %+v", p)
	}
}

// Re-encoding a parsed real frame must give the same bytes when the fields
// are in our canonical order: check on frames written in that order, and
// check semantic equality for all.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, f := range seeds(t) {
		p, err := ParseMessage(f)
		if err != nil {
			t.Fatalf("parse %q: %v", f, err)
		}
		enc := p.AppendMessage(nil)
		q, err := ParseMessage(enc)
		if err != nil {
			t.Fatalf("reparse %q: %v", enc, err)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip of %q:\n%+v\n%+v", f, p, q)
		}
	}
	// Exact bytes for the canonical order.
	for _, f := range []string{realFrames[0], realFrames[3], realFrames[6]} {
		p, _ := ParseMessage([]byte(f))
		if got := string(p.AppendMessage(nil)); got != f {
			t.Errorf("encode:\n got %s\nwant %s", got, f)
		}
	}
}

func TestRequestFields(t *testing.T) {
	t.Parallel()
	p := &Packet{
		From: "pushpin-proxy_1", ID: "abc", Seq: 0, HasSeq: true, Ext: Ext{Multi: true},
		Method: "POST", URI: "http://example.com/x?y", Headers: Headers{{"Host", "example.com"}, {"X-A", "1"}, {"X-A", "2"}},
		Body: []byte("hi"), More: true, Stream: true, Credits: 200000, HasCredits: true, MaxSize: 5, Timeout: 9,
		PeerAddress: "127.0.0.1", PeerPort: 555, ConnectHost: "localhost", ConnectPort: 8080,
		IgnorePolicies: true, TrustConnectHost: true, IgnoreTLSErrors: true, FollowRedirects: true,
		Passthrough: []byte("4:true!"), UserData: []byte("1:x,"),
	}
	q, err := ParseMessage(p.AppendMessage(nil))
	if err != nil {
		t.Fatal(err)
	}
	p.HasHeaders = true
	if !reflect.DeepEqual(p, q) {
		t.Fatalf("\n%+v\n%+v", p, q)
	}
	if q.Headers.Get("x-a") != "1" || len(q.Headers.Values("X-A")) != 2 {
		t.Fatal("header helpers")
	}
}

func TestListIDAndPub(t *testing.T) {
	t.Parallel()
	p := &Packet{From: "h", IDs: []IDSeq{{"a", 1}, {"b", 7}}, Type: KeepAlive, Ext: Ext{Multi: true}}
	frame := p.AppendPub(nil, "condure")
	recv, msg, err := SplitPub(frame)
	if err != nil || string(recv) != "condure" {
		t.Fatalf("split: %q %v", recv, err)
	}
	q, err := ParseMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(q.IDs, p.IDs) || q.ID != "" {
		t.Fatalf("ids %+v", q.IDs)
	}
}

// A data packet batched for several sessions (ext.multi-data): one body,
// a seq per id, and the capability flag survive a round trip.
func TestMultiDataRoundTrip(t *testing.T) {
	t.Parallel()
	p := &Packet{From: "h", IDs: []IDSeq{{"a", 3}, {"b", 9}}, Ext: Ext{Multi: true, MultiData: true},
		Body: []byte("hello\n"), More: true}
	q, err := ParseMessage(p.AppendMessage(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(q.IDs, p.IDs) || !q.Ext.MultiData || !q.Ext.Multi || string(q.Body) != "hello\n" || !q.More || q.Type != Data {
		t.Fatalf("round trip: %+v", q)
	}
	bad := &Packet{From: "h", ID: "a", Seq: 0, HasSeq: true, Ext: Ext{Other: map[string][]byte{"multi-data": []byte("1:x,")}}}
	if _, err := ParseMessage(bad.AppendMessage(nil)); err == nil || !strings.Contains(err.Error(), "multi-data") {
		t.Fatalf("non-bool ext.multi-data: %v", err)
	}
}

func TestPeerPortString(t *testing.T) {
	t.Parallel()
	// Pushpin's C++ side emits peer-port as a string.
	p, err := Parse([]byte("29:2:id,1:x,9:peer-port,5:48330,}"))
	if err != nil || p.PeerPort != 48330 {
		t.Fatalf("%+v %v", p, err)
	}
}

func TestBadPackets(t *testing.T) {
	t.Parallel()
	cases := []string{
		"X12:2:id,1:x,}",
		"T",
		"T3:abc,",
		"T24:2:id,1:x,4:type,3:bad,}",
		"T7:1:a,0:,}",
		"T20:2:id,1:x,3:seq,1:x,}",
		"T27:2:id,1:x,7:headers,5:1:a,]}",
	}
	for _, c := range cases {
		if _, err := ParseMessage([]byte(c)); err == nil {
			t.Errorf("%q parsed without error", c)
		} else if !errors.Is(err, ErrBadPacket) && !errors.Is(err, ErrNoPrefix) && !errors.Is(err, ErrNoID) {
			t.Errorf("%q: unexpected error kind %v", c, err)
		}
	}
}

func FuzzParseMessage(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
		for i := 1; i < len(s); i += 7 {
			f.Add(s[:i])
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseMessage(b)
		if err != nil {
			return
		}
		q, err := ParseMessage(p.AppendMessage(nil))
		if err != nil {
			t.Fatalf("re-encoding of %q does not parse: %v", b, err)
		}
		if !reflect.DeepEqual(normalize(p), normalize(q)) {
			t.Fatalf("round trip of %q:\n%+v\n%+v", b, p, q)
		}
	})
}

// normalize erases differences that encoding legitimately introduces.
func normalize(p *Packet) *Packet {
	c := *p
	if len(c.Headers) > 0 {
		c.HasHeaders = true
	}
	if c.HasCode && c.Type == Data && c.Reason == "" {
		c.Reason = ""
	}
	if len(c.IDs) > 0 {
		c.ID = ""
	}
	if len(c.Ext.Other) == 0 {
		c.Ext.Other = nil
	}
	if c.Body != nil && len(c.Body) == 0 {
		c.Body = []byte{}
	}
	// Zero-valued optional ints/bools are not emitted.
	return &c
}

func BenchmarkParseKeepAlive(b *testing.B) {
	msg := []byte(realFrames[0])
	b.ReportAllocs()
	var p Packet
	for i := 0; i < b.N; i++ {
		if err := p.Unmarshal(msg[1:]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeData(b *testing.B) {
	p := &Packet{From: "pushpin-handler_1", ID: "0-0-1", Seq: 5, HasSeq: true, Body: bytes.Repeat([]byte("x"), 64), More: true}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = p.AppendPub(buf[:0], "condure")
	}
}

// Frames produced by the real condure 1.9.1 (testdata/condure-*-recv-*)
// re-encode byte for byte: our connection manager writes packets exactly as
// condure does.
func TestCondureFramesByteExact(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/condure-*-recv-*.bin")
	if len(files) < 10 {
		t.Fatalf("only %d condure frames in testdata", len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p, err := ParseMessage(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if got := p.AppendMessage(nil); !bytes.Equal(got, b) {
			t.Errorf("%s:\n got %s\nwant %s", filepath.Base(f), got, b)
		}
	}
}

// A condure request (8 headers) and a zurl response with a body: what the
// proxy parses for every proxied request.
func BenchmarkParse(b *testing.B) {
	for _, name := range []string{"condure-get-00-recv-request", "zurl-small-02-recv-response"} {
		raw, err := os.ReadFile("testdata/" + name + ".bin")
		if err != nil {
			b.Fatal(err)
		}
		if _, m, err := SplitPub(raw); err == nil && raw[0] != 'T' {
			raw = m
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for i := 0; i < b.N; i++ {
				if _, err := ParseMessage(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A response head as the proxy relays it (zurl's reply, the proxy's packet
// to the connection manager): five headers and a small body.
func BenchmarkEncodeResponse(b *testing.B) {
	p := &Packet{From: "pushpin-proxy_1234", ID: "0-1-2f", Seq: 0, HasSeq: true, Ext: Ext{Multi: true},
		Code: 200, HasCode: true, Reason: "OK", HasHeaders: true,
		Headers: Headers{{"Content-Length", "29"}, {"Content-Type", "text/plain"}, {"Date", "Tue, 01 Dec 2026 08:20:56 GMT"},
			{"X-Backend", "yes"}, {"Cache-Control", "no-cache"}},
		Body: []byte("hello from the bench backend\n")}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = p.AppendPub(buf[:0], "condure")
	}
}
