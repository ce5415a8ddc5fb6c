package woh_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/pushpin-go/pushpin/internal/freeport"
	"github.com/pushpin-go/pushpin/proto/wsevents"
	"github.com/pushpin-go/pushpin/proxy/internal/woh"
)

// accState is what a backend using Content-Bytes-Accepted keeps per
// connection: the start of a message it accepted in part.
type accState struct {
	cut  bool   // the one partial acceptance is done
	part []byte // accepted bytes of an unfinished message
}

// serveAccepting (/acc) accepts only 3 bytes of the first request with more
// than 3 content bytes, then everything, and glues a replayed message's
// rest to its accepted start: "got: <message>" per whole message.
func (b *backend) serveAccepting(w http.ResponseWriter, r *http.Request, evs []wsevents.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := &b.acc
	if st.part != nil && r.Header.Get("Content-Bytes-Replayed") == "" {
		http.Error(w, "replay expected", http.StatusBadRequest)
		return
	}
	content := 0
	for _, e := range evs {
		content += len(e.Content)
	}
	limit := content
	if !st.cut && content > 3 {
		st.cut, limit = true, 3
	}
	var out []byte
	taken := 0
	for i, e := range evs {
		switch e.Type {
		case wsevents.Open:
			out = wsevents.Append(out, wsevents.Open, nil)
			continue
		case wsevents.Close:
			// The CLOSE's code and reason count as content: accepting
			// all the data but not the CLOSE would be an error.
			taken += len(e.Content)
			code, reason := wsevents.CloseCode(e.Content)
			out = wsevents.AppendClose(out, code, reason)
			continue
		}
		n := min(len(e.Content), limit-taken)
		taken += n
		if i == 0 && st.part == nil && r.Header.Get("Content-Bytes-Replayed") != "" {
			http.Error(w, "unexpected replay", http.StatusBadRequest)
			return
		}
		msg := append(append([]byte(nil), st.part...), e.Content[:n]...)
		st.part = nil
		if n < len(e.Content) {
			st.part = msg
			out = wsevents.Append(out, wsevents.Text, []byte("partial: "+string(msg)))
			break
		}
		out = wsevents.Append(out, wsevents.Text, []byte("got: "+string(msg)))
	}
	h := w.Header()
	h.Set("Content-Type", wsevents.ContentType)
	h.Set("Content-Bytes-Accepted", strconv.Itoa(taken))
	h.Set("Content-Length", strconv.Itoa(len(out)))
	_, _ = w.Write(out) // a write error is the proxy side hanging up
}

// A real backend accepts 3 bytes of "hello": the proxy keeps "lo", sends
// nothing until the client has more to say, then replays "lo" ahead of
// the new message, announced by Content-Bytes-Replayed; the backend sees
// every byte once, in order, and the close goes through cleanly.
func TestIntegrationContentBytesAccepted(t *testing.T) {
	port, err := freeport.Get()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	b := startBackend(t, addr)
	d := newDriver(t, "http://"+addr+"/acc")
	if _, ok := d.next().(woh.Accept); !ok {
		t.Fatal("not accepted")
	}

	d.input(func(c *woh.Conn) []woh.Action { return c.ClientMessage(wsevents.Text, []byte("hello")) })
	d.expect(deliver("partial: hel"))
	d.input(func(c *woh.Conn) []woh.Action {
		if u := c.WindowUsed(); u != 2 {
			t.Errorf("window used %d, want the 2 unaccepted bytes", u)
		}
		return nil
	})

	d.input(func(c *woh.Conn) []woh.Action { return c.ClientMessage(wsevents.Text, []byte(" world")) })
	d.expect(deliver("got: hello"))
	d.expect(deliver("got:  world"))

	d.input(func(c *woh.Conn) []woh.Action { return c.ClientClose(1000, "done") })
	d.expect(woh.CloseClient{Code: 1000, Reason: "done"})
	d.expect(woh.Finished{})

	reqs := b.requests()
	if len(reqs) != 4 {
		t.Fatalf("%d requests, want OPEN, hello, replay, CLOSE", len(reqs))
	}
	replay := reqs[2]
	if len(replay.events) != 2 || string(replay.events[0].Content) != "lo" || string(replay.events[1].Content) != " world" {
		t.Fatalf("replay request %+v", replay.events)
	}
	if replay.header.Get("Content-Bytes-Replayed") != "2" || reqs[1].header.Get("Content-Bytes-Replayed") != "" ||
		reqs[3].header.Get("Content-Bytes-Replayed") != "" {
		t.Fatalf("Content-Bytes-Replayed: %q %q %q", reqs[1].header.Get("Content-Bytes-Replayed"),
			replay.header.Get("Content-Bytes-Replayed"), reqs[3].header.Get("Content-Bytes-Replayed"))
	}
}
