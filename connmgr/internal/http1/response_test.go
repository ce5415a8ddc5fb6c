package http1

import (
	"testing"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

func mustParse(t *testing.T, s string) *Request {
	t.Helper()
	r, _, err := ParseRequest([]byte(s), DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// condure's output rules (zhttp.md §5.1, scripts/capture/OBSERVED.md §2).
func TestResponseFraming(t *testing.T) {
	get11 := "GET / HTTP/1.1\r\nHost: h\r\n\r\n"
	close11 := "GET / HTTP/1.1\r\nConnection: close\r\n\r\n"
	get10 := "GET / HTTP/1.0\r\n\r\n"
	ka10 := "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
	head11 := "HEAD / HTTP/1.1\r\n\r\n"
	ct := zhttp.Headers{{Name: "Content-Type", Value: "text/plain"}}
	framing := zhttp.Headers{{Name: "Content-Type", Value: "text/plain"}, {Name: "Connection", Value: "keep-alive"},
		{Name: "Transfer-Encoding", Value: "chunked"}, {Name: "Content-Length", Value: "37"}}
	cases := []struct {
		name, req string
		code      int
		hdrs      zhttp.Headers
		more      bool
		body      int
		head      string
		keep      bool
		framing   Framing
	}{
		{"complete 1.1", get11, 200, ct, false, 5, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n", true, FrameLength},
		{"streamed 1.1", get11, 200, ct, true, 5, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n", true, FrameChunked},
		{"server length wins", get11, 200, framing, true, 5, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 37\r\n\r\n", true, FrameLength},
		{"1.1 close", close11, 200, ct, false, 0, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false, FrameLength},
		{"1.0 complete", get10, 200, nil, false, 2, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n", false, FrameLength},
		{"1.0 keep-alive", ka10, 200, nil, false, 2, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n", true, FrameLength},
		{"1.0 streamed", ka10, 200, nil, true, 2, "HTTP/1.0 200 OK\r\n\r\n", false, FrameClose},
		{"204", get11, 204, framing, false, 0, "HTTP/1.1 204 No Content\r\nContent-Type: text/plain\r\n\r\n", true, FrameNone},
		{"304", get11, 304, nil, true, 0, "HTTP/1.1 304 Not Modified\r\n\r\n", true, FrameNone},
		{"HEAD", head11, 200, framing, false, 0, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 37\r\n\r\n", true, FrameLength},
	}
	reasons := map[int]string{200: "OK", 204: "No Content", 304: "Not Modified"}
	for _, c := range cases {
		r := mustParse(t, c.req)
		p := PlanResponse(r, c.code, c.hdrs, c.more, c.body)
		got := string(AppendHead(nil, r, c.code, reasons[c.code], c.hdrs, p))
		if got != c.head || p.KeepAlive != c.keep || p.Framing != c.framing {
			t.Errorf("%s: got %q keep=%v framing=%v\nwant %q keep=%v framing=%v", c.name, got, p.KeepAlive, p.Framing, c.head, c.keep, c.framing)
		}
		if (r.Method == "HEAD" || c.code == 204 || c.code == 304) != p.NoBody {
			t.Errorf("%s: NoBody=%v", c.name, p.NoBody)
		}
	}
	// Header injection from a server is neutralised.
	r := mustParse(t, get11)
	h := zhttp.Headers{{Name: "X", Value: "a\r\nInjected: 1"}}
	if got := string(AppendHead(nil, r, 200, "OK\r\n", h, Plan{Framing: FrameLength, HasLength: true, KeepAlive: true})); got !=
		"HTTP/1.1 200 OK\r\nX: aInjected: 1\r\nContent-Length: 0\r\n\r\n" {
		t.Fatalf("injection: %q", got)
	}
}

func FuzzBodyDecoder(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"), 3)
	f.Add([]byte("0\r\n\r\n"), 1)
	f.Add([]byte("A\nabcdefghij\n0\n\n"), 4)
	f.Fuzz(func(t *testing.T, in []byte, step int) {
		if step <= 0 || step > len(in)+1 {
			step = len(in) + 1
		}
		// The same input fed whole and in pieces decodes to the same body.
		whole, usedWhole, errWhole := decodeAll(t, &Request{Chunked: true, ContentLength: -1}, in, len(in)+1)
		parts, usedParts, errParts := decodeAll(t, &Request{Chunked: true, ContentLength: -1}, in, step)
		if (errWhole == nil) != (errParts == nil) || errWhole == nil && (string(whole) != string(parts) || usedWhole != usedParts) {
			t.Fatalf("whole %q/%d/%v, parts(%d) %q/%d/%v", whole, usedWhole, errWhole, step, parts, usedParts, errParts)
		}
	})
}
