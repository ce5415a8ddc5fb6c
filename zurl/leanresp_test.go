package zurl

import (
	"bufio"
	"io"
	"net/http"
	"net/textproto"
	"reflect"
	"strings"
	"testing"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// leanRespCases are response heads (and bodies) on which readHead must
// agree with http.ReadResponse, which net/http's Transport uses.
var leanRespCases = []string{
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nx-lower: a\r\nX-Lower: b\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 404 Not Found Here\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\nContent-Length: 3\n\nabc",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\n\r\n2\r\nab\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
	"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
	"HTTP/1.1 200 OK\r\n\r\nuntil the end",
	"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\n\r\n",
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Folded: a\r\n  b\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\n X-Lead: a\r\n\r\n",
	"HTTP/1.1 200 OK\r\nBad Name: a\r\n\r\n",
	"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Ctl: a\x01b\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Space:   padded  \r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 20 OK\r\n\r\n",
	"HTTP/1.1 abc OK\r\n\r\n",
	"HTTP/2.0 200 OK\r\n\r\n",
	"ICY 200 OK\r\n\r\n",
	"HTTP/1.1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
	"HTTP/1.1 200 OK\r\nContent-Len",
	"",
}

// outcome is what pump and the pool take from a parsed response.
type outcome struct {
	Err           bool
	Code          int
	Reason        string
	Headers       map[string][]string // canonical names, hop-by-hop removed
	Length        int64
	Body          string
	BodyErr       bool
	Reuse         bool
	ContentEncode string
}

func viaNetHTTP(raw string, head bool) outcome {
	req := &http.Request{Method: "GET"}
	if head {
		req.Method = "HEAD"
	}
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), req)
	if err != nil {
		return outcome{Err: true}
	}
	r := fromHTTP(resp)
	o := outcome{Code: r.code, Reason: r.reason, Headers: canon(r.headers), Length: r.length,
		Reuse: !resp.Close && r.code != 101, ContentEncode: r.encoding}
	if resp.Header.Get("Pragma") != "" { // net/http's fixPragmaCacheControl adds one
		delete(o.Headers, "Cache-Control")
	}
	b, err := io.ReadAll(r.body)
	o.Body, o.BodyErr = string(b), err != nil
	if o.Length == -1 && resp.TransferEncoding == nil && !head && r.code/100 != 1 && r.code != 204 && r.code != 304 {
		o.Reuse = false // close-delimited
	}
	return o
}

func viaLean(raw string, head bool) outcome {
	r, reuse, err := readHead(bufio.NewReader(strings.NewReader(raw)), head)
	if err != nil {
		return outcome{Err: true}
	}
	o := outcome{Code: r.code, Reason: r.reason, Headers: canon(r.headers), Length: r.length, Reuse: reuse,
		ContentEncode: r.encoding}
	b, err := io.ReadAll(r.body)
	o.Body, o.BodyErr = string(b), err != nil
	return o
}

func canon(h zhttp.Headers) map[string][]string {
	m := map[string][]string{}
	for _, x := range h {
		k := textproto.CanonicalMIMEHeaderKey(x.Name)
		m[k] = append(m[k], x.Value)
	}
	return m
}

func TestReadHeadMatchesNetHTTP(t *testing.T) {
	for _, c := range leanRespCases {
		for _, head := range []bool{false, true} {
			want, got := viaNetHTTP(c, head), viaLean(c, head)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%q (head %v):\n got %+v\nwant %+v", c, head, got, want)
			}
		}
	}
}

// The lean parser keeps the backend's order and case.
func TestReadHeadOrder(t *testing.T) {
	r, _, err := readHead(bufio.NewReader(strings.NewReader(
		"HTTP/1.1 200 OK\r\nx-b: 1\r\nConnection: keep-alive\r\nA-Header: 2\r\nx-b: 3\r\nContent-Length: 0\r\n\r\n")), false)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range r.headers {
		got = append(got, h.Name+"="+h.Value)
	}
	if strings.Join(got, " ") != "x-b=1 A-Header=2 x-b=3 Content-Length=0" {
		t.Fatalf("headers %v", got)
	}
}

func FuzzReadHead(f *testing.F) {
	for _, c := range leanRespCases {
		f.Add(c, false)
	}
	f.Fuzz(func(t *testing.T, raw string, head bool) {
		want, got := viaNetHTTP(raw, head), viaLean(raw, head)
		if want.Err != got.Err {
			t.Fatalf("%q: net/http error %v, lean error %v", raw, want.Err, got.Err)
		}
		if !want.Err && !got.Err && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q (head %v):\n got %+v\nwant %+v", raw, head, got, want)
		}
	})
}
