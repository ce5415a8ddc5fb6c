package woh

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/pushpin-go/pushpin/proto/wsevents"
)

func TestClientCloseClean(t *testing.T) {
	t.Parallel()
	c, _ := opened(t, Config{})
	reqBody(t, c.ClientMessage(wsevents.Text, text("a")))
	c.ClientMessage(wsevents.Text, text("b"))
	none[SendRequest](t, c.ClientClose(1000, "bye"))
	// Queued messages go first, the CLOSE with them.
	if b := reqBody(t, respond(c, t0, 200, wohOK(), "")); b != "TEXT 1\r\nb\r\nCLOSE 5\r\n\x03\xe8bye\r\n" {
		t.Fatalf("close request %q", b)
	}
	// Nothing follows a close frame; should it, it is discarded, credited.
	if acts := c.ClientMessage(wsevents.Text, text("late")); !reflect.DeepEqual(acts, []Action{CreditClient{N: 4}}) {
		t.Fatal(show(acts))
	}
	acts := respond(c, t0, 200, wohOK(), "TEXT 1\r\nz\r\nCLOSE 4\r\n\x03\xe9ok\r\n")
	want := []Action{Deliver{Type: wsevents.Text, Data: text("z")}, CloseClient{Code: 1001, Reason: "ok"}, Finished{}}
	if !reflect.DeepEqual(acts, want) {
		t.Fatalf("got %s", show(acts))
	}
}

func TestClientCloseWithoutCode(t *testing.T) {
	t.Parallel()
	c, _ := opened(t, Config{})
	if b := reqBody(t, c.ClientClose(-1, "")); b != "CLOSE\r\n" {
		t.Fatalf("%q", b)
	}
	acts := respond(c, t0, 200, wohOK(), "CLOSE\r\n")
	if !reflect.DeepEqual(acts, []Action{CloseClient{Code: -1}, Finished{}}) {
		t.Fatal(show(acts))
	}
}

// A client message being assembled when the client closes is dropped.
func TestClientCloseDropsPartial(t *testing.T) {
	t.Parallel()
	c, _ := opened(t, Config{})
	c.ClientFrame(wsevents.Text, text("par"), false)
	if b := reqBody(t, c.ClientClose(1000, "")); b != "CLOSE 2\r\n\x03\xe8\r\n" {
		t.Fatalf("%q", b)
	}
	if c.WindowUsed() != 0 {
		t.Fatalf("used %d", c.WindowUsed())
	}
}

func TestClientCloseUnanswered(t *testing.T) {
	t.Parallel()
	// Without keep-alives the backend has one chance to answer CLOSE.
	c, _ := opened(t, Config{})
	reqBody(t, c.ClientClose(1000, ""))
	acts := respond(c, t0, 200, wohOK(), "TEXT 1\r\na\r\n")
	if d := one[DropClient](t, acts); !errors.Is(d.Err, ErrUncleanClose) {
		t.Fatal(d.Err)
	}
	one[Finished](t, acts)

	// With keep-alives it may answer on a later request.
	c, _ = opened(t, Config{}, "Keep-Alive-Interval", "20")
	reqBody(t, c.ClientClose(1000, ""))
	if acts := respond(c, t0, 200, wohOK(), ""); len(acts) != 0 {
		t.Fatal(show(acts))
	}
	if b := reqBody(t, c.Tick(t0.Add(20*time.Second))); b != "" {
		t.Fatalf("keep-alive after close %q", b)
	}
	acts = respond(c, t0, 200, wohOK(), "CLOSE 2\r\n\x03\xe8\r\n")
	if !reflect.DeepEqual(acts, []Action{CloseClient{Code: 1000, Reason: ""}, Finished{}}) {
		t.Fatal(show(acts))
	}
}

// Backend-initiated close: the client is closed, events after CLOSE are
// ignored, and the client's echo is sent as a final CLOSE request.
func TestBackendClose(t *testing.T) {
	t.Parallel()
	c, _ := opened(t, Config{})
	reqBody(t, c.Refresh())
	acts := respond(c, t0, 200, wohOK(), "TEXT 1\r\na\r\nCLOSE 5\r\n\x0f\xa0bye\r\nTEXT 1\r\nb\r\n")
	want := []Action{Deliver{Type: wsevents.Text, Data: text("a")}, CloseClient{Code: 4000, Reason: "bye"}}
	if !reflect.DeepEqual(acts, want) || c.Done() {
		t.Fatalf("got %s", show(acts))
	}
	if b := reqBody(t, c.ClientClose(4000, "bye")); b != "CLOSE 5\r\n\x0f\xa0bye\r\n" {
		t.Fatalf("final close %q", b)
	}
	acts = respond(c, t0, 200, wohOK(), "")
	if !reflect.DeepEqual(acts, []Action{Finished{}}) {
		t.Fatalf("got %s", show(acts))
	}
}

func TestClientGone(t *testing.T) {
	t.Parallel()
	// Idle: DISCONNECT right away; its response is ignored.
	c, _ := opened(t, Config{})
	if b := reqBody(t, c.ClientGone()); b != "DISCONNECT\r\n" {
		t.Fatalf("%q", b)
	}
	if acts := respond(c, t0, 500, nil, "whatever"); !reflect.DeepEqual(acts, []Action{Finished{}}) {
		t.Fatal(show(acts))
	}

	// Busy: queued messages discarded, DISCONNECT alone after the request
	// in flight, whose events no longer reach anybody.
	c, _ = opened(t, Config{})
	reqBody(t, c.ClientMessage(wsevents.Text, text("a")))
	c.ClientMessage(wsevents.Text, text("b"))
	if acts := c.ClientGone(); len(acts) != 0 {
		t.Fatal(show(acts))
	}
	acts := respond(c, t0, 200, wohOK(), "TEXT 1\r\nx\r\n")
	if len(acts) != 1 || reqBody(t, acts) != "DISCONNECT\r\n" {
		t.Fatalf("got %s", show(acts))
	}
	// The usual retries apply to it.
	if acts := c.RequestFailed(t0, false); len(acts) != 0 || c.NextDeadline().IsZero() {
		t.Fatal(show(acts))
	}
	if b := reqBody(t, c.Tick(c.NextDeadline())); b != "DISCONNECT\r\n" {
		t.Fatalf("retry %q", b)
	}
	if acts := c.RequestFailed(t0, true); !reflect.DeepEqual(acts, []Action{Finished{}}) {
		t.Fatal(show(acts))
	}
	if len(c.ClientGone()) != 0 || len(c.Refresh()) != 0 {
		t.Fatal("input after finish")
	}
}

func TestClientGoneDuringOpen(t *testing.T) {
	t.Parallel()
	c, _ := New(Config{})
	if acts := c.ClientGone(); len(acts) != 0 {
		t.Fatal(show(acts))
	}
	acts := respond(c, t0, 200, wohOK(), "OPEN\r\nTEXT 1\r\na\r\n")
	if len(acts) != 1 || reqBody(t, acts) != "DISCONNECT\r\n" {
		t.Fatalf("got %s", show(acts))
	}
	// Rejected while gone: nothing to tell anybody.
	c, _ = New(Config{})
	c.ClientGone()
	if acts := respond(c, t0, 403, nil, ""); !reflect.DeepEqual(acts, []Action{Finished{}}) {
		t.Fatal(show(acts))
	}
	c, _ = New(Config{})
	c.ClientGone()
	if acts := c.RequestFailed(t0, false); !reflect.DeepEqual(acts, []Action{Finished{}}) {
		t.Fatal(show(acts))
	}
}

func TestDetach(t *testing.T) {
	t.Parallel()
	c, _ := opened(t, Config{Window: 10})
	reqBody(t, c.ClientMessage(wsevents.Text, text("0123456789")))
	none[CreditClient](t, c.ClientMessage(wsevents.Text, text("queued")))
	acts := c.Detach()
	// Withheld credits are returned: the detached client keeps sending.
	if one[CreditClient](t, acts).N != 16 {
		t.Fatal(show(acts))
	}
	none[SendRequest](t, acts)
	if acts := c.ClientMessage(wsevents.Text, text("late")); !reflect.DeepEqual(acts, []Action{CreditClient{N: 4}}) {
		t.Fatal(show(acts))
	}
	// Queued messages go with the CLOSE; backend answers reach nobody.
	acts = respond(c, t0, 200, wohOK(), "TEXT 1\r\nx\r\n")
	if b := reqBody(t, acts); b != "TEXT 6\r\nqueued\r\nCLOSE\r\n" {
		t.Fatalf("%q", b)
	}
	none[Deliver](t, acts)
	acts = respond(c, t0, 200, wohOK(), "TEXT 1\r\ny\r\nDISCONNECT\r\n")
	if !reflect.DeepEqual(acts, []Action{Finished{}}) {
		t.Fatal(show(acts))
	}
	// The session echoes the client's close itself.
	if acts := c.ClientClose(1000, ""); !reflect.DeepEqual(acts, []Action{CloseClient{Code: -1}}) {
		t.Fatal(show(acts))
	}
	if acts := c.ClientMessage(wsevents.Text, text("ab")); !reflect.DeepEqual(acts, []Action{CreditClient{N: 2}}) {
		t.Fatal(show(acts))
	}
}

func TestDetachAnsweredWithClose(t *testing.T) {
	t.Parallel()
	c, _ := opened(t, Config{})
	if b := reqBody(t, c.Detach()); b != "CLOSE\r\n" {
		t.Fatalf("%q", b)
	}
	if acts := respond(c, t0, 200, wohOK(), "CLOSE 2\r\n\x03\xe8\r\n"); !reflect.DeepEqual(acts, []Action{Finished{}}) {
		t.Fatal(show(acts))
	}
	if len(c.Detach()) != 0 {
		t.Fatal("second detach")
	}
}

// After Finished, inputs other than ClientFrame/ClientClose after a detach
// produce nothing.
func TestFinishedIsInert(t *testing.T) {
	t.Parallel()
	c, _ := New(Config{})
	c.RequestFailed(t0, false)
	for _, acts := range [][]Action{
		c.Tick(t0.Add(time.Hour)), c.Refresh(), c.Detach(), c.ClientGone(), c.ClientClose(1000, ""),
		c.SetPendingToClient(0), c.ResponseHead(200, "", wohOK()), c.ResponseBody(t0, nil, true),
		c.RequestFailed(t0, false),
	} {
		if len(acts) != 0 {
			t.Fatal(show(acts))
		}
	}
}

func TestCloseNotHeldBySlowClient(t *testing.T) {
	t.Parallel()
	c, _ := opened(t, Config{})
	c.SetPendingToClient(Window)
	if b := reqBody(t, c.ClientClose(1000, "")); b != "CLOSE 2\r\n\x03\xe8\r\n" {
		t.Fatalf("%q", b)
	}
}

// A close before the 101 cannot happen; if reported, it counts as gone.
func TestClientCloseDuringOpen(t *testing.T) {
	t.Parallel()
	c, _ := New(Config{})
	if len(c.ClientClose(1000, "")) != 0 {
		t.Fatal("action while OPEN in flight")
	}
	acts := respond(c, t0, 200, wohOK(), "OPEN\r\n")
	if len(acts) != 1 || reqBody(t, acts) != "DISCONNECT\r\n" {
		t.Fatal(show(acts))
	}
}

func TestHTTPScheme(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"ws": "http", "wss": "https", "WSS": "https", "http": "http", "https": "https"} {
		if got := HTTPScheme(in); got != want {
			t.Errorf("%s: %s", in, got)
		}
	}
}
