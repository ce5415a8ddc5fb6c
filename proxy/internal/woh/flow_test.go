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

func text(s string) []byte { return []byte(s) }

func TestBatchingWhileInFlight(t *testing.T) {
	t.Parallel()
	c, _ := opened(t, Config{})
	if b := reqBody(t, c.ClientMessage(wsevents.Text, text("m0"))); b != "TEXT 2\r\nm0\r\n" {
		t.Fatalf("first %q", b)
	}
	for i := 1; i <= 5; i++ {
		none[SendRequest](t, c.ClientMessage(wsevents.Text, text("m"+string(rune('0'+i)))))
	}
	none[SendRequest](t, c.ClientMessage(wsevents.Binary, nil))
	b := reqBody(t, respond(c, t0, 200, wohOK(), ""))
	want := "TEXT 2\r\nm1\r\nTEXT 2\r\nm2\r\nTEXT 2\r\nm3\r\nTEXT 2\r\nm4\r\nTEXT 2\r\nm5\r\nBINARY\r\n"
	if b != want {
		t.Fatalf("batch %q", b)
	}
	// Nothing queued: no request, no timer without keep-alive.
	if acts := respond(c, t0, 200, wohOK(), ""); len(acts) != 0 || !c.NextDeadline().IsZero() {
		t.Fatalf("idle %s", show(acts))
	}
}

func TestOneEventPerRequest(t *testing.T) {
	t.Parallel()
	c, _ := opened(t, Config{OneEvent: true})
	reqBody(t, c.ClientMessage(wsevents.Text, text("a")))
	c.ClientMessage(wsevents.Text, text("b"))
	c.ClientMessage(wsevents.Ping, nil)
	c.ClientClose(1000, "")
	for _, want := range []string{"TEXT 1\r\nb\r\n", "PING\r\n", "CLOSE 2\r\n\x03\xe8\r\n"} {
		if b := reqBody(t, respond(c, t0, 200, wohOK(), "")); b != want {
			t.Fatalf("got %q, want %q", b, want)
		}
	}
}

// The window covers the request in flight plus queued messages: a request
// takes messages while under it (the last may overshoot), credits are held
// back while it is full and returned as it drains.
func TestWindowAndCredits(t *testing.T) {
	t.Parallel()
	c, _ := opened(t, Config{Window: 100})
	m40 := text(strings.Repeat("a", 40))
	acts := c.ClientMessage(wsevents.Text, m40) // in flight: 40
	if one[CreditClient](t, acts).N != 40 {
		t.Fatal(show(acts))
	}
	if one[CreditClient](t, c.ClientMessage(wsevents.Text, m40)).N != 40 { // 80
		t.Fatal("second credit")
	}
	none[CreditClient](t, c.ClientMessage(wsevents.Text, m40))   // 120: full
	none[CreditClient](t, c.ClientMessage(wsevents.Binary, m40)) // 160
	none[CreditClient](t, c.ClientMessage(wsevents.Text, m40))   // 200
	if c.WindowUsed() != 200 {
		t.Fatalf("used %d", c.WindowUsed())
	}
	acts = respond(c, t0, 200, wohOK(), "")
	// 160 queued, taken while under 100: 3 messages (the last overshoots),
	// one stays queued; 160 held, so the 120 withheld stay withheld.
	if b := reqBody(t, acts); strings.Count(b, "\r\n") != 6 {
		t.Fatalf("batch %q", b)
	}
	none[CreditClient](t, acts)
	acts = respond(c, t0, 200, wohOK(), "")
	if one[CreditClient](t, acts).N != 120 || reqBody(t, acts) != "TEXT 28\r\n"+string(m40)+"\r\n" {
		t.Fatalf("drain %s", show(acts))
	}
}

func TestFragmentedClientMessages(t *testing.T) {
	t.Parallel()
	c, _ := opened(t, Config{})
	reqBody(t, c.ClientMessage(wsevents.Text, text("x")))
	none[SendRequest](t, c.ClientFrame(wsevents.Text, text("hel"), false))
	c.ClientFrame(wsevents.Ping, text("p"), true)
	c.ClientFrame(0, text("l"), false)
	c.ClientFrame(0, text("o"), true)
	if b := reqBody(t, respond(c, t0, 200, wohOK(), "")); b != "PING 1\r\np\r\nTEXT 5\r\nhello\r\n" {
		t.Fatalf("batch %q", b)
	}
}

// A message being assembled that alone fills the window still gets
// credits (holding them would deadlock it); past MaxMessage it is closed.
func TestLargeClientMessage(t *testing.T) {
	t.Parallel()
	c, _ := opened(t, Config{Window: 100, MaxMessage: 300})
	chunk := text(strings.Repeat("z", 80))
	for i := range 3 {
		acts := c.ClientFrame(wsevents.Binary, chunk, false)
		if one[CreditClient](t, acts).N != 80 {
			t.Fatalf("frame %d: %s", i, show(acts))
		}
	}
	acts := c.ClientFrame(0, text("tail"), true)
	if b := reqBody(t, acts); b != "BINARY f4\r\n"+strings.Repeat("z", 240)+"tail\r\n" {
		t.Fatalf("body %q", b)
	}
	respond(c, t0, 200, wohOK(), "")
	c.ClientFrame(wsevents.Text, chunk, false)
	c.ClientFrame(0, chunk, false)
	c.ClientFrame(0, chunk, false)
	acts = c.ClientFrame(0, chunk, false)
	if cl := one[CloseClient](t, acts); cl.Code != 1009 {
		t.Fatalf("close %+v", cl)
	}
	if b := reqBody(t, acts); b != "DISCONNECT\r\n" {
		t.Fatalf("body %q", b)
	}
}

func TestKeepAliveInterval(t *testing.T) {
	t.Parallel()
	cases := []struct {
		values []string // successive responses' Keep-Alive-Interval ("-" absent)
		want   time.Duration
	}{
		{[]string{"3"}, 20 * time.Second},
		{[]string{"45"}, 45 * time.Second},
		{[]string{" 30 "}, 30 * time.Second},
		{[]string{"0"}, 0},
		{[]string{"-5"}, 0},
		{[]string{"abc"}, 0},
		{[]string{"30", "-"}, 30 * time.Second},
		{[]string{"30", "x"}, 0},
		{[]string{"30", "25"}, 25 * time.Second},
	}
	for _, tc := range cases {
		c, _ := opened(t, Config{})
		for _, v := range tc.values {
			reqBody(t, c.Refresh())
			h := wohOK()
			if v != "-" {
				h = wohOK("Keep-Alive-Interval", v)
			}
			respond(c, t0, 200, h, "")
		}
		if c.KeepAliveInterval() != tc.want {
			t.Errorf("%q: interval %v, want %v", tc.values, c.KeepAliveInterval(), tc.want)
		}
		wantAt := time.Time{}
		if tc.want > 0 {
			wantAt = t0.Add(tc.want)
		}
		if !c.NextDeadline().Equal(wantAt) {
			t.Errorf("%q: deadline %v", tc.values, c.NextDeadline())
		}
	}
}

func TestKeepAliveTimer(t *testing.T) {
	t.Parallel()
	c, _ := opened(t, Config{}, "Keep-Alive-Interval", "20")
	at := t0.Add(20 * time.Second)
	if !c.NextDeadline().Equal(at) {
		t.Fatalf("deadline %v", c.NextDeadline())
	}
	// Any request stops the timer; the response re-arms it.
	reqBody(t, c.ClientMessage(wsevents.Text, text("a")))
	if !c.NextDeadline().IsZero() {
		t.Fatal("timer runs during a request")
	}
	t1 := t0.Add(5 * time.Second)
	respond(c, t1, 200, wohOK(), "")
	if len(c.Tick(t1.Add(19*time.Second))) != 0 {
		t.Fatal("early keep-alive")
	}
	req := one[SendRequest](t, c.Tick(t1.Add(20*time.Second)))
	if len(req.Body) != 0 || req.Headers.Get("Content-Length") != "0" {
		t.Fatalf("keep-alive %q", req.Body)
	}
}

func TestSetMeta(t *testing.T) {
	t.Parallel()
	c, _ := opened(t, Config{}, "Set-Meta-User", "alice", "Set-Meta-Room", "1")
	reqBody(t, c.Refresh())
	respond(c, t0, 200, wohOK("set-meta-user", "bob", "Set-Meta-Room", "", "Set-Meta-", "ignored"), "")
	if !reflect.DeepEqual(c.Meta(), map[string]string{"user": "bob"}) {
		t.Fatalf("meta %v", c.Meta())
	}
	h := one[SendRequest](t, c.Refresh()).Headers
	if h.Get("Meta-user") != "bob" || len(h.Values("Meta-User")) != 1 || h.Has("Meta-Room") {
		t.Fatalf("headers %v", h)
	}
}

func TestRefresh(t *testing.T) {
	t.Parallel()
	c, _ := opened(t, Config{})
	if b := reqBody(t, c.Refresh()); b != "" {
		t.Fatalf("refresh body %q", b)
	}
	none[SendRequest](t, c.Refresh()) // in flight: queued
	reqBody(t, respond(c, t0, 200, wohOK(), ""))
	if acts := respond(c, t0, 200, wohOK(), ""); len(acts) != 0 {
		t.Fatalf("one refresh, two requests: %s", show(acts))
	}
	// Not before the handshake is accepted.
	c2, _ := New(Config{})
	c2.RequestFailed(t0, true)
	if len(c2.Refresh()) != 0 {
		t.Fatal("refresh after failure")
	}
}

// No request but keep-alives while the client has Window bytes or more of
// backend messages still to read.
func TestPendingToClient(t *testing.T) {
	t.Parallel()
	c, _ := opened(t, Config{}, "Keep-Alive-Interval", "20")
	none[SendRequest](t, c.SetPendingToClient(Window))
	none[SendRequest](t, c.ClientMessage(wsevents.Text, text("a")))
	// Pushpin's keep-alive timer sends whatever is queued, even now.
	if b := reqBody(t, c.Tick(t0.Add(20*time.Second))); b != "TEXT 1\r\na\r\n" {
		t.Fatalf("keep-alive carried %q", b)
	}
	none[SendRequest](t, c.ClientMessage(wsevents.Text, text("b")))
	none[SendRequest](t, respond(c, t0, 200, wohOK(), ""))
	none[SendRequest](t, c.SetPendingToClient(Window+1))
	if b := reqBody(t, c.SetPendingToClient(Window-1)); b != "TEXT 1\r\nb\r\n" {
		t.Fatalf("after drain %q", b)
	}
}

func TestRetries(t *testing.T) {
	t.Parallel()
	signs := 0
	c, _ := opened(t, Config{Sign: func(h zhttp.Headers) zhttp.Headers { signs++; return h }})
	first := one[SendRequest](t, c.ClientMessage(wsevents.Text, text("keep")))
	now := t0
	for i := range MaxRetries {
		if acts := c.RequestFailed(now, false); len(acts) != 0 {
			t.Fatalf("retry %d: %s", i, show(acts))
		}
		delay := RetryBase << i
		if got := c.NextDeadline().Sub(now); got != delay {
			t.Fatalf("retry %d after %v, want %v", i, got, delay)
		}
		if len(c.Tick(now.Add(delay-1))) != 0 {
			t.Fatal("early retry")
		}
		none[SendRequest](t, c.ClientMessage(wsevents.Text, text("later")))
		now = now.Add(delay)
		req := one[SendRequest](t, c.Tick(now))
		if string(req.Body) != string(first.Body) || req.Attempt != i+1 {
			t.Fatalf("retry %d: %q attempt %d", i, req.Body, req.Attempt)
		}
	}
	if signs != 2+MaxRetries {
		t.Fatalf("signed %d times", signs)
	}
	acts := c.RequestFailed(now, false)
	if d := one[DropClient](t, acts); !errors.Is(d.Err, ErrRequestFailed) {
		t.Fatalf("drop %v", d.Err)
	}
	one[Finished](t, acts)
}

func TestRetryJitterAndReset(t *testing.T) {
	t.Parallel()
	c, _ := opened(t, Config{Jitter: func() time.Duration { return 700 * time.Millisecond }})
	reqBody(t, c.Refresh())
	c.RequestFailed(t0, false)
	if got := c.NextDeadline().Sub(t0); got != 1700*time.Millisecond {
		t.Fatalf("delay %v", got)
	}
	c.Tick(t0.Add(2 * time.Second))
	c.RequestFailed(t0, false)
	if got := c.NextDeadline().Sub(t0); got != 2700*time.Millisecond {
		t.Fatalf("second delay %v", got)
	}
	c.Tick(t0.Add(3 * time.Second))
	respond(c, t0, 200, wohOK(), "") // a good response resets the count
	reqBody(t, c.Refresh())
	c.RequestFailed(t0, false)
	if got := c.NextDeadline().Sub(t0); got != 1700*time.Millisecond {
		t.Fatalf("after reset %v", got)
	}
	// A failure that may have reached the backend is not retried.
	c.Tick(t0.Add(2 * time.Second))
	one[DropClient](t, c.RequestFailed(t0, true))
}

func TestLaterResponseErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		code     int
		h        []string
		body     string
		err      error
		delivers int
	}{
		{"status 500", 500, nil, "", ErrBadResponse, 0},
		{"wrong content type", 200, []string{"Content-Type", "text/plain"}, "TEXT 1\r\na\r\n", ErrBadResponse, 0},
		{"invalid body", 200, nil, "TEXT 1\r\na\r\nTEXT", ErrInvalidEvents, 0},
		{"disconnect", 200, nil, "TEXT 1\r\na\r\nDISCONNECT\r\nTEXT 1\r\nb\r\n", ErrDisconnect, 1},
	}
	for _, tc := range cases {
		c, _ := opened(t, Config{})
		reqBody(t, c.Refresh())
		h := wohOK()
		if tc.h != nil {
			h = wohOK()
			h[0].Value = tc.h[1]
		}
		acts := respond(c, t0, tc.code, h, tc.body)
		if d := one[DropClient](t, acts); !errors.Is(d.Err, tc.err) {
			t.Errorf("%s: %v", tc.name, d.Err)
		}
		if n := len(of[Deliver](acts)); n != tc.delivers {
			t.Errorf("%s: %d delivered", tc.name, n)
		}
		if _, ok := acts[len(acts)-1].(Finished); !ok {
			t.Errorf("%s: %s", tc.name, show(acts))
		}
	}
	c, _ := opened(t, Config{MaxResponseBody: 10})
	reqBody(t, c.Refresh())
	c.ResponseHead(200, "OK", wohOK())
	c.ResponseBody(t0, text("TEXT 1\r\n"), false)
	if d := one[DropClient](t, c.ResponseBody(t0, text("a\r\n"), false)); !errors.Is(d.Err, ErrBodyTooLarge) {
		t.Fatal(d.Err)
	}
}

// The response body may arrive in any chunks: split at every byte, the
// actions are the same.
func TestResponseBodySplitAtEveryByte(t *testing.T) {
	t.Parallel()
	body := "OPEN\r\nTEXT 5\r\nm:one\r\nTEXT 5\r\nc:{x}\r\nBINARY 4\r\nm:\r\n\r\nPING 2\r\npp\r\nCLOSE 5\r\n\x03\xe8bye\r\n"
	h := wohOK("Sec-WebSocket-Extensions", "grip")
	ref, _ := New(Config{ConnectionID: "x"})
	want := respond(ref, t0, 200, h, body)
	if len(want) != 6 {
		t.Fatalf("reference %s", show(want))
	}
	for i := 0; i <= len(body); i++ {
		for j := i; j <= len(body); j++ {
			c, _ := New(Config{ConnectionID: "x"})
			got := c.ResponseHead(200, "X", h)
			got = append(got, c.ResponseBody(t0, text(body[:i]), false)...)
			got = append(got, c.ResponseBody(t0, text(body[i:j]), false)...)
			got = append(got, c.ResponseBody(t0, text(body[j:]), true)...)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("split %d/%d: %s\nwant %s", i, j, show(got), show(want))
			}
		}
	}
}
