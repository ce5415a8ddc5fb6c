package woh

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pushpin-go/pushpin/proto/wsevents"
)

// Content-Bytes-Accepted (Pushpin 1.41), one rule per case: the request
// under test carries msgs (and a CLOSE if closeCode != 0), later messages
// arrive while it is in flight, and its response carries accepted ("-":
// no header) and body.
func TestContentBytesAccepted(t *testing.T) {
	t.Parallel()
	const cl = "CLOSE 5\r\n\x03\xe8bye\r\n" // closeCode 1000, reason "bye"
	cases := []struct {
		name      string
		cfg       Config
		msgs      []string
		closeCode int // 0: no close; -1: close without code; else with "bye"
		later     []string
		accepted  string
		body      string // response body
		sent      string // the request under test, when worth checking
		err       error  // the client is dropped with it
		next      string // the next request's body; "" none
		replayed  string // its Content-Bytes-Replayed ("" absent)
		used      int    // WindowUsed after the response
		clean     bool   // the connection ends with a clean close
		peerClose bool   // the client is closed, the connection goes on
	}{
		// The header's value.
		{name: "absent: all", msgs: []string{"hello"}, accepted: "-"},
		{name: "empty: all", msgs: []string{"hello"}, accepted: ""},
		{name: "not a number: all", msgs: []string{"hello"}, accepted: "3x"},
		{name: "negative: all", msgs: []string{"hello"}, accepted: "-1"},
		{name: "overflow: all", msgs: []string{"hello"}, accepted: "99999999999999999999"},
		{name: "exactly all", msgs: []string{"hello"}, accepted: "5"},
		{name: "more than sent", msgs: []string{"hello"}, accepted: "6", err: ErrBadAccepted},
		{name: "more than sent, later data not counted", msgs: []string{"hello"}, later: []string{"x"}, accepted: "6", err: ErrBadAccepted},

		// Partial acceptance: the rest is replayed, but only with new data.
		{name: "cut in a message waits for new data", msgs: []string{"hello"}, accepted: " 3 ", used: 2},
		{name: "cut in a message", msgs: []string{"hello"}, later: []string{"x"}, accepted: "3",
			next: "TEXT 2\r\nlo\r\nTEXT 1\r\nx\r\n", replayed: "2", used: 3},
		{name: "nothing accepted of a request that held everything", msgs: []string{"hello"}, later: []string{"x"}, accepted: "0",
			next: "TEXT 5\r\nhello\r\nTEXT 1\r\nx\r\n", replayed: "5", used: 6},
		{name: "cut across messages", msgs: []string{"ab", "cd", "ef"}, later: []string{"g"}, accepted: "3",
			next: "TEXT 1\r\nd\r\nTEXT 2\r\nef\r\nTEXT 1\r\ng\r\n", replayed: "3", used: 4},
		{name: "empty message at the cut is accepted", msgs: []string{"ab", "", "cd"}, later: []string{"x"}, accepted: "2",
			next: "TEXT 2\r\ncd\r\nTEXT 1\r\nx\r\n", replayed: "2", used: 3},
		{name: "empty message after the cut is replayed", msgs: []string{"ab", "", "cd"}, later: []string{"x"}, accepted: "1",
			next: "TEXT 1\r\nb\r\nTEXT\r\nTEXT 2\r\ncd\r\nTEXT 1\r\nx\r\n", replayed: "3", used: 4},
		{name: "ping cut keeps its type", msgs: []string{"PING:abc"}, later: []string{"x"}, accepted: "1",
			next: "PING 2\r\nbc\r\nTEXT 1\r\nx\r\n", replayed: "2", used: 3},

		// A request that could not hold all pending data needs progress.
		{name: "one_event left data out, nothing accepted", cfg: Config{OneEvent: true}, msgs: []string{"a", "b"},
			sent: "TEXT 1\r\na\r\n", accepted: "0", err: ErrNoProgress},
		{name: "one_event left data out, some accepted", cfg: Config{OneEvent: true}, msgs: []string{"ab", "c"},
			sent: "TEXT 2\r\nab\r\n", accepted: "1", next: "TEXT 1\r\nb\r\n", replayed: "1", used: 2},
		{name: "window left data out, nothing accepted", cfg: Config{Window: 4}, msgs: []string{"abc", "de", "f"},
			sent: "TEXT 3\r\nabc\r\nTEXT 2\r\nde\r\n", accepted: "0", err: ErrNoProgress},
		{name: "window left data out, some accepted", cfg: Config{Window: 4}, msgs: []string{"abc", "de", "f"},
			accepted: "4", next: "TEXT 1\r\ne\r\nTEXT 1\r\nf\r\n", replayed: "1", used: 2},

		// Close: CLOSE goes after every queued message, and counts as sent
		// only once all the content before it is accepted.
		{name: "close waits for window-limited data", cfg: Config{Window: 4}, msgs: []string{"abc", "de", "f"}, closeCode: 1000,
			sent: "TEXT 3\r\nabc\r\nTEXT 2\r\nde\r\n", accepted: "-", next: "TEXT 1\r\nf\r\n" + cl, used: 1},
		{name: "close accepted by default", msgs: []string{"ab"}, closeCode: 1000, sent: "TEXT 2\r\nab\r\n" + cl,
			accepted: "-", body: "CLOSE\r\n", clean: true},
		{name: "close accepted explicitly", msgs: []string{"ab"}, closeCode: 1000, accepted: "7", body: "CLOSE\r\n", clean: true},
		{name: "close over its size", msgs: []string{"ab"}, closeCode: 1000, accepted: "8", err: ErrBadAccepted},
		{name: "content accepted, close not", msgs: []string{"ab"}, closeCode: 1000, accepted: "2", err: ErrBadAccepted},
		{name: "content accepted, close in part", msgs: []string{"ab"}, closeCode: 1000, accepted: "4", err: ErrBadAccepted},
		{name: "content in part: close not sent, replayed at once", msgs: []string{"ab"}, closeCode: 1000, accepted: "1",
			next: "TEXT 1\r\nb\r\n" + cl, replayed: "1", used: 1},
		{name: "content in part: backend CLOSE closes the client", msgs: []string{"ab"}, closeCode: 1000, accepted: "1",
			body: "CLOSE\r\n", next: "TEXT 1\r\nb\r\n" + cl, replayed: "1", used: 1, peerClose: true},
		{name: "nothing accepted before close", msgs: []string{"ab"}, closeCode: 1000, accepted: "0", err: ErrNoProgress},
		{name: "close without code has no content", msgs: []string{"ab"}, closeCode: -1, accepted: "2", body: "CLOSE\r\n", clean: true},
		{name: "lone close with code must be accepted", closeCode: 1000, accepted: "0", err: ErrBadAccepted},
		{name: "lone close without code", closeCode: -1, sent: "CLOSE\r\n", accepted: "0", body: "CLOSE\r\n", clean: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _ := opened(t, tc.cfg)
			reqBody(t, c.Refresh()) // in flight while msgs queue up
			for _, m := range tc.msgs {
				clientMsg(c, m)
			}
			if tc.closeCode != 0 {
				reason := "bye"
				if tc.closeCode < 0 {
					reason = ""
				}
				c.ClientClose(tc.closeCode, reason)
			}
			sent := reqBody(t, respond(c, t0, 200, wohOK(), ""))
			if tc.sent != "" && sent != tc.sent {
				t.Fatalf("request under test %q, want %q", sent, tc.sent)
			}
			for _, m := range tc.later {
				none[SendRequest](t, clientMsg(c, m))
			}
			h := wohOK()
			if tc.accepted != "-" {
				h = wohOK(hdrAccepted, tc.accepted)
			}
			acts := respond(c, t0, 200, h, tc.body)
			switch {
			case tc.err != nil:
				if d := one[DropClient](t, acts); !errors.Is(d.Err, tc.err) {
					t.Fatalf("dropped with %v, want %v", d.Err, tc.err)
				}
				one[Finished](t, acts)
				return
			case tc.clean:
				if !reflect.DeepEqual(acts, []Action{CloseClient{Code: -1}, Finished{}}) {
					t.Fatalf("want clean close: %s", show(acts))
				}
				return
			}
			none[DropClient](t, acts)
			none[Finished](t, acts)
			if cc := of[CloseClient](acts); len(cc) != map[bool]int{false: 0, true: 1}[tc.peerClose] {
				t.Fatalf("client close: %s", show(acts))
			}
			reqs := of[SendRequest](acts)
			switch {
			case tc.next == "" && len(reqs) != 0:
				t.Fatalf("unexpected request %s", show(acts))
			case tc.next != "" && (len(reqs) != 1 || string(reqs[0].Body) != tc.next):
				t.Fatalf("next request: %s, want %q", show(acts), tc.next)
			case tc.next != "":
				if got := reqs[0].Headers.Get(hdrReplayed); got != tc.replayed {
					t.Fatalf("%s %q, want %q", hdrReplayed, got, tc.replayed)
				}
			}
			if c.WindowUsed() != tc.used {
				t.Fatalf("window used %d, want %d", c.WindowUsed(), tc.used)
			}
		})
	}
}

// clientMsg sends a text message, or a ping for "PING:payload".
func clientMsg(c *Conn, m string) []Action {
	if p, ok := strings.CutPrefix(m, "PING:"); ok {
		return c.ClientMessage(wsevents.Ping, text(p))
	}
	return c.ClientMessage(wsevents.Text, text(m))
}

// Credits come back only as the backend accepts bytes: unaccepted bytes
// keep their place in the window.
func TestAcceptedCredits(t *testing.T) {
	t.Parallel()
	c, _ := opened(t, Config{Window: 10})
	acts := c.ClientMessage(wsevents.Text, text("0123456789"))
	reqBody(t, acts)
	none[CreditClient](t, acts) // the window is full
	acts = respond(c, t0, 200, wohOK(hdrAccepted, "0"), "")
	if len(acts) != 0 || c.WindowUsed() != 10 {
		t.Fatalf("nothing accepted: %s, used %d", show(acts), c.WindowUsed())
	}
	req := one[SendRequest](t, c.Refresh())
	if string(req.Body) != "TEXT a\r\n0123456789\r\n" || req.Headers.Get(hdrReplayed) != "10" {
		t.Fatalf("refresh %q %v", req.Body, req.Headers)
	}
	acts = respond(c, t0, 200, wohOK(hdrAccepted, "4"), "")
	if one[CreditClient](t, acts).N != 10 || c.WindowUsed() != 6 {
		t.Fatalf("4 accepted: %s, used %d", show(acts), c.WindowUsed())
	}
	none[SendRequest](t, acts)
}

// Replayed content rides on keep-alives, and a retry repeats the header.
func TestAcceptedReplayOnKeepAliveAndRetry(t *testing.T) {
	t.Parallel()
	c, _ := opened(t, Config{Jitter: func() time.Duration { return 0 }}, "Keep-Alive-Interval", "20")
	reqBody(t, c.ClientMessage(wsevents.Binary, text("hello")))
	none[SendRequest](t, respond(c, t0, 200, wohOK(hdrAccepted, "3"), ""))
	ka := one[SendRequest](t, c.Tick(t0.Add(20*time.Second)))
	if string(ka.Body) != "BINARY 2\r\nlo\r\n" || ka.Headers.Get(hdrReplayed) != "2" {
		t.Fatalf("keep-alive %q %v", ka.Body, ka.Headers)
	}
	c.RequestFailed(t0, false)
	retry := one[SendRequest](t, c.Tick(t0.Add(RetryBase)))
	if string(retry.Body) != string(ka.Body) || retry.Headers.Get(hdrReplayed) != "2" {
		t.Fatalf("retry %q %v", retry.Body, retry.Headers)
	}
	respond(c, t0, 200, wohOK(), "")
	if req := one[SendRequest](t, c.ClientMessage(wsevents.Text, text("x"))); req.Headers.Has(hdrReplayed) {
		t.Fatalf("nothing replayed, header sent: %v", req.Headers)
	}
}

// A message still being assembled is pending data the request could not
// hold (Pushpin's rule): the backend must accept something.
func TestAcceptedMaxedByPartialMessage(t *testing.T) {
	t.Parallel()
	c, _ := opened(t, Config{})
	reqBody(t, c.Refresh())
	c.ClientMessage(wsevents.Text, text("a"))
	c.ClientFrame(wsevents.Text, text("par"), false)
	reqBody(t, respond(c, t0, 200, wohOK(), ""))
	acts := respond(c, t0, 200, wohOK(hdrAccepted, "0"), "")
	if d := one[DropClient](t, acts); !errors.Is(d.Err, ErrNoProgress) {
		t.Fatal(d.Err)
	}
}

// A vanished client's DISCONNECT is not held up by the header.
func TestAcceptedIgnoredWhenGone(t *testing.T) {
	t.Parallel()
	c, _ := opened(t, Config{})
	reqBody(t, c.ClientMessage(wsevents.Text, text("hello")))
	none[SendRequest](t, c.ClientGone())
	req := one[SendRequest](t, respond(c, t0, 200, wohOK(hdrAccepted, "99"), ""))
	if string(req.Body) != "DISCONNECT\r\n" || req.Headers.Has(hdrReplayed) {
		t.Fatalf("%q %v", req.Body, req.Headers)
	}
}

// On the OPEN response: nothing was sent, so only 0 (or an invalid value)
// is acceptable, and the header is not relayed to the client.
func TestAcceptedOnOpen(t *testing.T) {
	t.Parallel()
	_, acts := opened(t, Config{}, hdrAccepted, "0")
	if a := one[Accept](t, acts); a.Headers.Has(hdrAccepted) {
		t.Fatalf("relayed: %v", a.Headers)
	}
	c, _ := New(Config{})
	acts = respond(c, t0, 200, wohOK(hdrAccepted, "1"), "OPEN\r\n")
	if f := one[OpenFailed](t, acts); f.TryNext || !errors.Is(f.Err, ErrBadAccepted) {
		t.Fatalf("%+v", f)
	}
}

// Detached: the unaccepted rest still reaches the backend, before CLOSE.
func TestAcceptedDetach(t *testing.T) {
	t.Parallel()
	c, _ := opened(t, Config{})
	reqBody(t, c.ClientMessage(wsevents.Text, text("hello")))
	none[SendRequest](t, c.Detach())
	acts := respond(c, t0, 200, wohOK(hdrAccepted, "2"), "TEXT 1\r\nz\r\n")
	none[Deliver](t, acts)
	req := one[SendRequest](t, acts)
	if string(req.Body) != "TEXT 3\r\nllo\r\nCLOSE\r\n" || req.Headers.Get(hdrReplayed) != "3" {
		t.Fatalf("%q %v", req.Body, req.Headers)
	}
	if acts := respond(c, t0, 200, wohOK(), "CLOSE\r\n"); !reflect.DeepEqual(acts, []Action{Finished{}}) {
		t.Fatal(show(acts))
	}
}
