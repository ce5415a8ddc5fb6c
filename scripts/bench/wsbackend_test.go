package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

func TestParseWSEvents(t *testing.T) {
	got, err := parseWSEvents([]byte("OPEN\r\nTEXT 5\r\nhello\r\nTEXT\r\nTEXT 0\r\n\r\nBINARY 3\r\n\x00\r\n\r\n" +
		"CLOSE 5\r\n\x03\xe8bye\r\nDISCONNECT\r\nFUTURE\r\n"))
	want := []wsEvent{{"OPEN", nil}, {"TEXT", []byte("hello")}, {"TEXT", nil}, {"TEXT", []byte{}},
		{"BINARY", []byte("\x00\r\n")}, {"CLOSE", []byte("\x03\xe8bye")}, {"DISCONNECT", nil}, {"FUTURE", nil}}
	if err != nil || len(got) != len(want) {
		t.Fatalf("%q, %v", got, err)
	}
	for i := range want {
		if got[i].typ != want[i].typ || !bytes.Equal(got[i].content, want[i].content) {
			t.Fatalf("event %d: %q, want %q", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"OPEN", "TEXT 5\r\nhell", "TEXT 5\r\nhelloXY", "TEXT zz\r\nx\r\n", "TEXT \r\n\r\n",
		"TEXT +1\r\nx\r\n", "TEXT 1\r\nx"} {
		if _, err := parseWSEvents([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func FuzzParseWSEvents(f *testing.F) {
	f.Add([]byte("OPEN\r\nTEXT 5\r\nhello\r\n"))
	f.Add([]byte("CLOSE 5\r\n\x03\xe8bye\r\nDISCONNECT\r\n"))
	f.Add([]byte("TEXT 1\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		evs, err := parseWSEvents(raw)
		if err != nil {
			return
		}
		// What parses re-encodes to what parses the same.
		var enc []byte
		for _, ev := range evs {
			enc = appendWSEvent(enc, ev.typ, ev.content)
		}
		again, err := parseWSEvents(enc)
		if err != nil || len(again) != len(evs) {
			t.Fatalf("%q → %q: %v", raw, enc, err)
		}
		for i := range evs {
			if again[i].typ != evs[i].typ || !bytes.Equal(again[i].content, evs[i].content) {
				t.Fatalf("%q: event %d %q became %q", raw, i, evs[i], again[i])
			}
		}
	})
}

// wsPost sends one WebSocket-over-HTTP request as a proxy does.
func wsPost(t *testing.T, url, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", wsEventsType)
	req.Header.Set("Connection-Id", "bench-test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestWSBackendExchange(t *testing.T) {
	stats := &wsBackendStats{}
	srv := httptest.NewServer(http.HandlerFunc(stats.handleWSEvents))
	defer srv.Close()
	url := srv.URL + "/ws/fanout?ch=fan-ws"

	resp, body := wsPost(t, url, "OPEN\r\n")
	evs, err := parseWSEvents([]byte(body))
	want := []wsEvent{{"OPEN", nil}, {"TEXT", []byte(`c:{"type":"subscribe","channel":"fan-ws"}`)}, {"TEXT", []byte("ok")}}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != wsEventsType ||
		resp.Header.Get("Sec-WebSocket-Extensions") != `grip; message-prefix=""` || err != nil || !reflect.DeepEqual(evs, want) {
		t.Fatalf("OPEN: %d %v %q %v", resp.StatusCode, resp.Header, body, err)
	}

	resp, body = wsPost(t, url, "TEXT 2\r\nhi\r\nBINARY 1\r\n\x01\r\nPING\r\n")
	if resp.StatusCode != 200 || body != "TEXT 2\r\nhi\r\nBINARY 1\r\n\x01\r\n" || resp.Header.Get("Sec-WebSocket-Extensions") != "" {
		t.Fatalf("echo: %d %q", resp.StatusCode, body)
	}
	resp, body = wsPost(t, url, "CLOSE 2\r\n\x03\xe8\r\nTEXT 1\r\nx\r\n")
	if resp.StatusCode != 200 || body != "CLOSE 2\r\n\x03\xe8\r\n" {
		t.Fatalf("close: %d %q", resp.StatusCode, body)
	}
	resp, body = wsPost(t, url, "DISCONNECT\r\n")
	if resp.StatusCode != 200 || body != "" {
		t.Fatalf("disconnect: %d %q", resp.StatusCode, body)
	}
	if stats.opens.Load() != 1 || stats.messages.Load() != 2 || stats.closes.Load() != 1 || stats.disconnects.Load() != 1 {
		t.Fatalf("stats %d %d %d %d", stats.opens.Load(), stats.messages.Load(), stats.closes.Load(), stats.disconnects.Load())
	}

	for name, c := range map[string]struct{ url, body string }{
		"no channel":       {srv.URL + "/ws/x", "OPEN\r\n"},
		"OPEN not first":   {url, "TEXT 1\r\nx\r\nOPEN\r\n"},
		"malformed events": {url, "TEXT 9\r\nx\r\n"},
	} {
		if resp, body := wsPost(t, c.url, c.body); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %q", name, resp.StatusCode, body)
		}
	}
	resp, err = http.Post(url, "text/plain", strings.NewReader("OPEN\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || stats.refused.Load() != 4 {
		t.Fatalf("plain POST: %d; %d refused", resp.StatusCode, stats.refused.Load())
	}
}
