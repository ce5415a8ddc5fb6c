package woh

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pushpin-go/pushpin/proto/wsevents"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

var clientHeaders = zhttp.Headers{
	{Name: "Host", Value: "example.com"},
	{Name: "Upgrade", Value: "websocket"},
	{Name: "Connection", Value: "Upgrade"},
	{Name: "Sec-WebSocket-Key", Value: "dGhlIHNhbXBsZSBub25jZQ=="},
	{Name: "Sec-WebSocket-Version", Value: "13"},
	{Name: "Sec-WebSocket-Protocol", Value: "chat"},
	{Name: "Sec-WebSocket-Extensions", Value: "permessage-deflate"},
	{Name: "Origin", Value: "http://example.com"},
	{Name: "Cookie", Value: "a=b"},
	{Name: "Accept", Value: "*/*"},
	{Name: "Connection-Id", Value: "forged"},
	{Name: "Content-Length", Value: "0"},
	{Name: "Meta-User", Value: "forged"},
	{Name: "meta-x", Value: "forged"},
	{Name: "Keep-Alive", Value: "300"},
}

func TestOpenRequestHeaders(t *testing.T) {
	t.Parallel()
	signs := 0
	c, acts := New(Config{
		ConnectionID: "cid-1",
		Headers:      clientHeaders,
		Sign: func(h zhttp.Headers) zhttp.Headers {
			signs++
			return append(h, zhttp.Header{Name: "Grip-Sig", Value: strings.Repeat("s", signs)})
		},
	})
	req := one[SendRequest](t, acts)
	if string(req.Body) != "OPEN\r\n" || req.Attempt != 0 {
		t.Fatalf("body %q attempt %d", req.Body, req.Attempt)
	}
	want := zhttp.Headers{
		{Name: "Host", Value: "example.com"},
		{Name: "Sec-WebSocket-Key", Value: "dGhlIHNhbXBsZSBub25jZQ=="},
		{Name: "Sec-WebSocket-Version", Value: "13"},
		{Name: "Sec-WebSocket-Protocol", Value: "chat"},
		{Name: "Origin", Value: "http://example.com"},
		{Name: "Cookie", Value: "a=b"},
		{Name: "Sec-WebSocket-Extensions", Value: "grip"},
		{Name: "Grip-Sig", Value: "s"},
		{Name: "Accept", Value: "application/websocket-events"},
		{Name: "Connection-Id", Value: "cid-1"},
		{Name: "Content-Type", Value: "application/websocket-events"},
		{Name: "Content-Length", Value: "6"},
	}
	if !reflect.DeepEqual(req.Headers, want) {
		t.Fatalf("headers\n got %v\nwant %v", req.Headers, want)
	}
	// Meta set by the backend comes back on the next request, with a
	// fresh signature and the same Connection-Id.
	respond(c, t0, 200, wohOK("Set-Meta-User", "alice"), "OPEN\r\n")
	req = one[SendRequest](t, c.ClientMessage(wsevents.Text, []byte("hi")))
	if got := req.Headers.Get("Grip-Sig"); got != "ss" {
		t.Errorf("Grip-Sig %q, want a fresh one", got)
	}
	if req.Headers.Get("Meta-User") != "alice" || req.Headers.Get("Connection-Id") != "cid-1" ||
		req.Headers.Get("Content-Length") != "12" || len(req.Headers.Values("Meta-User")) != 1 {
		t.Errorf("headers %v", req.Headers)
	}
}

func TestOpenRequestNoGripAndGeneratedID(t *testing.T) {
	t.Parallel()
	c, acts := New(Config{NoGrip: true, Headers: clientHeaders})
	h := one[SendRequest](t, acts).Headers
	if h.Has("Sec-WebSocket-Extensions") {
		t.Errorf("no_grip route offered grip: %v", h)
	}
	id := h.Get("Connection-Id")
	if len(id) != 36 || id[14] != '4' || id != c.ConnectionID() {
		t.Errorf("Connection-Id %q", id)
	}
	if a, b := NewConnectionID(), NewConnectionID(); a == b {
		t.Error("ids repeat")
	}
}

func TestAcceptHeadersAndGrip(t *testing.T) {
	t.Parallel()
	c, acts := opened(t, Config{},
		"Sec-WebSocket-Protocol", "chat",
		"Sec-WebSocket-Extensions", `grip; message-prefix=""`,
		"Sec-WebSocket-Extensions", "permessage-deflate",
		"Set-Meta-Foo", "bar",
		"Keep-Alive-Interval", "30",
		"Content-Length", "6",
		"Grip-Channel", "room; filter=skip-self, news",
		"X-Custom", "1",
	)
	acc := one[Accept](t, acts)
	want := zhttp.Headers{{Name: "Sec-WebSocket-Protocol", Value: "chat"}, {Name: "X-Custom", Value: "1"}}
	if !reflect.DeepEqual(acc.Headers, want) || !acc.Grip || acc.Prefix != "" {
		t.Fatalf("accept %+v", acc)
	}
	subs := of[Subscribe](acts)
	if !reflect.DeepEqual(subs, []Subscribe{{Channel: "room", Filters: []string{"skip-self"}}, {Channel: "news"}}) {
		t.Fatalf("subscribes %+v", subs)
	}
	if c.Meta()["Foo"] != "bar" || c.KeepAliveInterval() != 30*time.Second || !c.Accepted() {
		t.Fatalf("meta %v ka %v", c.Meta(), c.KeepAliveInterval())
	}
}

// The exchange of websocket-over-http.md §5: events after OPEN in the same
// body are acted on, the c: message is consumed.
func TestAcceptSpecExample(t *testing.T) {
	t.Parallel()
	c, acts := New(Config{})
	_ = acts
	acts = respond(c, t0, 200, wohOK("Sec-WebSocket-Extensions", `grip; message-prefix=""`, "Set-Meta-foo", "bar"),
		"OPEN\r\nTEXT 2a\r\nc:{\"type\": \"subscribe\", \"channel\": \"test\"}\r\nTEXT 5\r\nhello\r\n")
	if len(acts) != 3 {
		t.Fatalf("actions %s", show(acts))
	}
	one[Accept](t, acts[:1])
	if ctl := acts[1].(Control); string(ctl.JSON) != `{"type": "subscribe", "channel": "test"}` {
		t.Fatalf("control %s", ctl.JSON)
	}
	if d := acts[2].(Deliver); d.Type != wsevents.Text || string(d.Data) != "hello" {
		t.Fatalf("deliver %+v", d)
	}
	req := one[SendRequest](t, c.ClientMessage(wsevents.Text, []byte("hi")))
	if string(req.Body) != "TEXT 2\r\nhi\r\n" || req.Headers.Get("Meta-foo") != "bar" {
		t.Fatalf("request %q %v", req.Body, req.Headers)
	}
	d := one[Deliver](t, respond(c, t0, 200, wohOK(), "TEXT 6\r\necho: \r\n"))
	if string(d.Data) != "echo: " {
		t.Fatalf("deliver %q", d.Data)
	}
}

func TestGripFilterOnDelivery(t *testing.T) {
	t.Parallel()
	c, _ := opened(t, Config{}, "Sec-WebSocket-Extensions", "grip")
	one[SendRequest](t, c.Refresh())
	acts := respond(c, t0, 200, wohOK(), "TEXT 9\r\nm:welcome\r\nTEXT a\r\nunprefixed\r\nBINARY 3\r\nm:\x01\r\nBINARY 1\r\n\x02\r\nTEXT 4\r\nc:{}\r\nPING\r\n")
	want := []Action{
		Deliver{Type: wsevents.Text, Data: []byte("welcome")},
		Deliver{Type: wsevents.Binary, Data: []byte("\x01")},
		Control{JSON: []byte("{}")},
		Deliver{Type: wsevents.Ping},
	}
	if !reflect.DeepEqual(acts, want) {
		t.Fatalf("got %s\nwant %s", show(acts), show(want))
	}
}

func TestWithoutGripEverythingIsData(t *testing.T) {
	t.Parallel()
	c, acts := opened(t, Config{})
	if one[Accept](t, acts).Grip {
		t.Fatal("grip without extension")
	}
	one[SendRequest](t, c.Refresh())
	d := one[Deliver](t, respond(c, t0, 200, wohOK(), "TEXT 4\r\nc:{}\r\n"))
	if string(d.Data) != "c:{}" {
		t.Fatalf("deliver %q", d.Data)
	}
}

func TestTrustedClientGetsGripExtension(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{{TrustedClient: true}, {NoGrip: true}} {
		c, acts := opened(t, cfg, "Sec-WebSocket-Extensions", `grip; message-prefix="p:"`, "Grip-Channel", "x")
		acc := one[Accept](t, acts)
		none[Subscribe](t, acts)
		if acc.Grip || acc.Headers.Get("Sec-WebSocket-Extensions") != `grip; message-prefix="p:"` || acc.Headers.Get("Grip-Channel") != "x" {
			t.Fatalf("%+v: accept %+v", cfg, acc)
		}
		one[SendRequest](t, c.Refresh())
		if d := one[Deliver](t, respond(c, t0, 200, wohOK(), "TEXT 4\r\nc:{}\r\n")); string(d.Data) != "c:{}" {
			t.Fatalf("deliver %q", d.Data)
		}
	}
}

func TestOpenResponseFailures(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", RejectBodyMax+50)
	cases := []struct {
		name   string
		code   int
		h      zhttp.Headers
		body   string
		reject bool
		err    error
	}{
		{"status 403", 403, zhttp.Headers{{Name: "Content-Type", Value: "text/plain"}, {Name: "Content-Length", Value: "9"}, {Name: "X-A", Value: "1"}}, "forbidden", true, nil},
		{"status 200 text/plain", 200, zhttp.Headers{{Name: "Content-Type", Value: "text/plain"}}, "OPEN\r\n", true, nil},
		{"content type with charset", 200, zhttp.Headers{{Name: "Content-Type", Value: wsevents.ContentType + "; charset=utf-8"}}, "OPEN\r\n", true, nil},
		{"big reject body", 500, zhttp.Headers{}, big, true, nil},
		{"invalid events", 200, wohOK(), "OPEN", false, ErrInvalidEvents},
		{"empty without keep-alive", 200, wohOK(), "", false, ErrNoOpen},
		{"first event not OPEN", 200, wohOK(), "TEXT 1\r\nx\r\nOPEN\r\n", false, ErrNoOpen},
		{"body too large", 200, wohOK(), "OPEN\r\n" + strings.Repeat("x", MaxResponseBody), false, ErrBodyTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _ := New(Config{})
			acts := respond(c, t0, tc.code, tc.h, tc.body)
			if _, ok := acts[len(acts)-1].(Finished); !ok || !c.Done() {
				t.Fatalf("not finished: %s", show(acts))
			}
			none[Accept](t, acts)
			if tc.reject {
				r := one[Reject](t, acts)
				wantBody := tc.body[:min(len(tc.body), RejectBodyMax)]
				if r.Code != tc.code || r.Reason != "X" || string(r.Body) != wantBody || r.Headers.Has("Content-Length") {
					t.Fatalf("reject %d %q %v body %d bytes", r.Code, r.Reason, r.Headers, len(r.Body))
				}
				return
			}
			f := one[OpenFailed](t, acts)
			if f.TryNext || !errors.Is(f.Err, tc.err) {
				t.Fatalf("open failed %+v, want %v", f, tc.err)
			}
		})
	}
}

func TestOpenRequestFailsOver(t *testing.T) {
	t.Parallel()
	for _, reached := range []bool{false, true} {
		c, _ := New(Config{})
		acts := c.RequestFailed(t0, reached)
		if f := one[OpenFailed](t, acts); f.TryNext == reached {
			t.Fatalf("reached=%v: %+v", reached, f)
		}
		one[Finished](t, acts)
		if !c.NextDeadline().IsZero() {
			t.Fatal("OPEN retried")
		}
	}
}

// An empty OPEN response with Keep-Alive-Interval leaves the handshake
// pending; OPEN is re-sent after the interval (minimum 20 s).
func TestEmptyOpenResponseWithKeepAlive(t *testing.T) {
	t.Parallel()
	c, _ := New(Config{})
	acts := respond(c, t0, 200, wohOK("Keep-Alive-Interval", "3"), "")
	if len(acts) != 0 || c.Accepted() {
		t.Fatalf("actions %s", show(acts))
	}
	if got := c.NextDeadline(); !got.Equal(t0.Add(20 * time.Second)) {
		t.Fatalf("deadline %v", got.Sub(t0))
	}
	if acts := c.Tick(t0.Add(19 * time.Second)); len(acts) != 0 {
		t.Fatalf("early tick %s", show(acts))
	}
	if b := reqBody(t, c.Tick(t0.Add(20*time.Second))); b != "OPEN\r\n" {
		t.Fatalf("re-sent %q", b)
	}
	one[Accept](t, respond(c, t0, 200, wohOK(), "OPEN\r\n"))
}

func TestOpenInLaterResponseDropsClient(t *testing.T) {
	t.Parallel()
	c, _ := opened(t, Config{})
	one[SendRequest](t, c.Refresh())
	acts := respond(c, t0, 200, wohOK(), "TEXT 1\r\na\r\nOPEN\r\nTEXT 1\r\nb\r\n")
	if len(acts) != 3 || !errors.Is(acts[1].(DropClient).Err, ErrUnexpectedOpen) {
		t.Fatalf("actions %s", show(acts))
	}
	one[Finished](t, acts)
}
