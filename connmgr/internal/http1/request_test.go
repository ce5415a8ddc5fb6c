package http1

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// Real requests (curl, browsers, Go's client, Pushpin's own test clients).
var seedRequests = []string{
	"GET / HTTP/1.1\r\nHost: localhost:7999\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
	"GET /stream?x=1 HTTP/1.1\r\nHost: 127.0.0.1:7999\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n",
	"POST /publish/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\nhello world",
	"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n",
	"GET / HTTP/1.0\r\n\r\n",
	"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	"PUT /x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
	"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
	"GET http://example.com/abs HTTP/1.1\r\nHost: example.com\r\n\r\n",
	"\r\nGET / HTTP/1.1\nHost: lf-only\n\n",
	"garbage\r\n\r\n",
	"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
}

func TestParseRequestFields(t *testing.T) {
	r, n, err := ParseRequest([]byte(seedRequests[2]), DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(seedRequests[2])-11 {
		t.Fatalf("head length %d", n)
	}
	want := &Request{Method: "POST", Target: "/publish/", Minor: 1, Host: "localhost", ContentLength: 11, KeepAlive: true,
		Headers: zhttp.Headers{{Name: "Host", Value: "localhost"}, {Name: "Content-Type", Value: "application/json"}, {Name: "Content-Length", Value: "11"}}}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("got %+v\nwant %+v", r, want)
	}
	if u := r.URI("http"); u != "http://localhost/publish/" {
		t.Fatalf("uri %q", u)
	}
}

func TestParseRequestSemantics(t *testing.T) {
	cases := []struct {
		in                          string
		minor                       int
		keepAlive, chunked, exp, ws bool
		uri                         string
	}{
		{seedRequests[0], 1, true, false, false, false, "http://localhost:7999/"},
		{seedRequests[3], 1, true, true, false, false, "http://x/up"},
		{seedRequests[4], 0, false, false, false, false, "http://localhost/"},
		{seedRequests[5], 0, true, false, false, false, "http://localhost/"},
		{seedRequests[6], 1, true, false, true, false, "http://x/x"},
		{seedRequests[7], 1, true, false, false, true, "http://x/ws"},
		{seedRequests[8], 1, true, false, false, false, "http://example.com/abs"},
		{seedRequests[9], 1, true, false, false, false, "http://lf-only/"},
		{"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 1, false, false, false, false, "http://localhost/"},
	}
	for _, c := range cases {
		r, _, err := ParseRequest([]byte(c.in), DefaultLimits)
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		if r.Minor != c.minor || r.KeepAlive != c.keepAlive || r.Chunked != c.chunked || r.Expect100 != c.exp ||
			r.WebSocket != c.ws || r.URI("http") != c.uri {
			t.Errorf("%q: got %+v uri %q", c.in, r, r.URI("http"))
		}
	}
}

func TestParseRequestErrors(t *testing.T) {
	big := "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 9000) + "\r\n\r\n"
	many := "GET / HTTP/1.1\r\n" + strings.Repeat("X-A: 1\r\n", 65) + "\r\n"
	cases := []struct {
		in   string
		want *Error
	}{
		{"garbage\r\n\r\n", ErrBadRequest},
		{"GET /\r\n\r\n", ErrBadRequest},
		{"GET / HTTP/2.0\r\nHost: x\r\n\r\n", ErrVersionUnsupported},
		{"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", ErrBadRequest},
		{"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", ErrBadRequest},
		{"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", ErrBadRequest},
		{"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", ErrBadRequest},
		{"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", ErrBadRequest},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", ErrNotImplemented},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", ErrBadRequest},
		{"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", ErrBadRequest},
		{"\x16\x03\x01\x02\x00", ErrBadRequest},
		{big, ErrHeadTooLarge},
		{big[:8500], ErrHeadTooLarge},
		{many, ErrHeadTooLarge},
	}
	for _, c := range cases {
		_, _, err := ParseRequest([]byte(c.in), DefaultLimits)
		if !errors.Is(err, c.want) {
			t.Errorf("%.40q: err %v, want class %d", c.in, err, c.want.Code)
		}
	}
	// A head of exactly the limit works, one byte more does not (condure).
	base := "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: \r\n\r\n"
	exact := strings.Replace(base, "X-Pad: ", "X-Pad: "+strings.Repeat("p", 8192-len(base)), 1)
	if _, n, err := ParseRequest([]byte(exact), DefaultLimits); err != nil || n != 8192 {
		t.Fatalf("8192-byte head: %d %v", n, err)
	}
	over := strings.Replace(exact, "X-Pad: ", "X-Pad: p", 1)
	if _, _, err := ParseRequest([]byte(over), DefaultLimits); !errors.Is(err, ErrHeadTooLarge) {
		t.Fatalf("8193-byte head: %v", err)
	}
	lim := DefaultLimits
	lim.MaxBody = 10
	if _, _, err := ParseRequest([]byte("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n"), lim); !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("body limit: %v", err)
	}
}

// Every prefix of a valid head is incomplete, never an error.
func TestParseRequestIncremental(t *testing.T) {
	for _, s := range seedRequests[:10] {
		_, n, err := ParseRequest([]byte(s), DefaultLimits)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		for i := 0; i < n; i++ {
			if _, _, err := ParseRequest([]byte(s[:i]), DefaultLimits); err != ErrIncomplete {
				t.Fatalf("%q prefix %d: %v", s, i, err)
			}
		}
	}
}

// decodeAll feeds in to a decoder in pieces of size step and returns the body.
func decodeAll(t testing.TB, r *Request, in []byte, step int) ([]byte, int, error) {
	d := NewBodyDecoder(r)
	var body []byte
	var buf []byte // unconsumed input, as the connection keeps it
	used := 0
	for off := 0; !d.Done(); {
		if off < len(in) {
			end := min(off+step, len(in))
			buf = append(buf, in[off:end]...)
			off = end
		} else if len(buf) == 0 || off >= len(in) {
			data, n, err := d.Decode(buf)
			body = append(body, data...)
			used += n
			buf = buf[n:]
			if err != nil {
				return body, used, err
			}
			if n == 0 {
				return body, used, ErrIncomplete
			}
			continue
		}
		for !d.Done() {
			data, n, err := d.Decode(buf)
			if err != nil {
				return body, used, err
			}
			body = append(body, data...)
			used += n
			buf = buf[n:]
			if n == 0 {
				break
			}
		}
	}
	return body, used, nil
}

func TestBodyDecoder(t *testing.T) {
	for _, s := range []string{seedRequests[2], seedRequests[3], seedRequests[6]} {
		r, n, err := ParseRequest([]byte(s), DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		rest := []byte(s[n:] + "GET /next HTTP/1.1\r\n\r\n")
		for step := 1; step <= len(rest); step++ {
			body, used, err := decodeAll(t, r, rest, step)
			if err != nil {
				t.Fatalf("%q step %d: %v", s, step, err)
			}
			want := map[bool]string{true: "hello world", false: "abc"}[r.ContentLength != 3]
			if string(body) != want || !bytes.HasPrefix(rest[used:], []byte("GET /next")) {
				t.Fatalf("%q step %d: body %q rest %q", s, step, body, rest[used:])
			}
		}
	}
	r := &Request{Chunked: true, ContentLength: -1}
	for _, bad := range []string{"zz\r\n", "5\r\nhelloX\r\n", "1234567890123456\r\n"} {
		if _, _, err := decodeAll(t, r, []byte(bad), 64); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range seedRequests {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, n, err := ParseRequest(b, DefaultLimits)
		if err != nil {
			var he *Error
			if err != ErrIncomplete && !errors.As(err, &he) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if n > len(b) || n <= 0 {
			t.Fatalf("consumed %d of %d", n, len(b))
		}
		// Split at every byte boundary: each prefix is incomplete and the
		// whole head parses the same.
		for i := 0; i < n; i++ {
			if _, _, err := ParseRequest(b[:i], DefaultLimits); err != ErrIncomplete {
				if errors.Is(err, ErrBadRequest) && i > 0 {
					// A prefix may already be provably bad only if the whole is; it is not.
					t.Fatalf("prefix %d of a valid head: %v", i, err)
				}
			}
		}
		r2, n2, err := ParseRequest(append(append([]byte{}, b[:n]...), "trailing"...), DefaultLimits)
		if err != nil || n2 != n || !reflect.DeepEqual(r, r2) {
			t.Fatalf("head not self-delimiting: %v", err)
		}
		if r.HasBody() {
			d := NewBodyDecoder(r)
			rest := b[n:]
			for !d.Done() {
				data, k, err := d.Decode(rest)
				if err != nil || k == 0 {
					break
				}
				if len(data) > k || k > len(rest) {
					t.Fatalf("decoder used %d of %d, data %d", k, len(rest), len(data))
				}
				rest = rest[k:]
			}
		}
	})
}
