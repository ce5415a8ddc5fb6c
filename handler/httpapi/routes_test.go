package httpapi

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/proto/publish"
)

// Every status and body of publish.md §2, against a real listener; /recover
// answers 501 until recover is built.
func TestControlAPIStatusesAndBodies(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []publish.Item
	srv := httptest.NewServer(&Server{Publish: func(items []publish.Item) {
		mu.Lock()
		got = append(got, items...)
		mu.Unlock()
	}, Log: zerolog.Nop()})
	defer srv.Close()
	do := func(method, path, ctype, body, accept string) (int, http.Header, string, bool) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if body == "" {
			req.Body = http.NoBody
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b), resp.Close
	}
	item := `{"items":[{"channel":"c","formats":{"http-stream":{"content":"x"}}}]}`
	cases := []struct {
		method, path, body, accept string
		code                       int
		want                       string
	}{
		{"GET", "/", "", "", 200, "Pushpin API\n"},
		{"POST", "/publish/", item, "", 200, "Published\n"},
		{"POST", "/publish", item, "", 200, "Published\n"},
		{"POST", "/publish/", item, "application/json", 200, "{\"message\":\"Published\"}\n"},
		{"POST", "/publish/", item, "image/png", 406, "Not Acceptable. Supported formats are text/plain and application/json.\n"},
		{"POST", "/recover/", "", "", 501, "Recover is not supported yet.\n"},
		{"POST", "/recover", "", "", 501, "Recover is not supported yet.\n"},
		{"GET", "/publish/", "", "", 405, "Method not allowed: GET.\n"},
		{"GET", "/nope", "", "", 404, "Not Found\n"},
		{"POST", "/publish/", "not json", "", 400, "Body is not valid JSON.\n"},
		{"POST", "/publish/", "[1]", "", 400, "Invalid format.\n"},
		{"POST", "/publish/", "{}", "", 400, "Invalid format: object does not contain 'items'\n"},
		{"POST", "/publish/", `{"items":3}`, "", 400, "Invalid format: object contains 'items' with wrong type\n"},
		{"POST", "/publish/", `{"items":[{"formats":{"http-stream":{"content":"x"}}}]}`, "", 400, "Invalid format: publish item object does not contain 'channel'\n"},
		{"POST", "/publish/", `{"items":[]}`, "", 200, "Published\n"},
		{"POST", "/publish/", strings.Repeat(" ", DefaultMaxBodySize+1), "", 400, "Request body too large.\n"},
	}
	for _, c := range cases {
		code, hdr, body, closed := do(c.method, c.path, "application/json", c.body, c.accept)
		if code != c.code || body != c.want {
			t.Errorf("%s %s %.30q: %d %q, want %d %q", c.method, c.path, c.body, code, body, c.code, c.want)
		}
		if !closed { // Connection: close on every response, as Pushpin
			t.Errorf("%s %s: no Connection: close", c.method, c.path)
		}
		if c.code == 405 && hdr.Get("Allow") != "POST" {
			t.Errorf("405 without Allow: POST")
		}
	}
	mu.Lock()
	n := len(got)
	mu.Unlock()
	if n != 3 {
		t.Errorf("%d items published, want 3", n)
	}
	// A chunked body (no Content-Length) is refused with 411.
	c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "POST /publish/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(b), "HTTP/1.1 411") || !strings.HasSuffix(string(b), "Request requires Content-Length.\n") {
		t.Errorf("chunked publish answered %q", b)
	}
}
