package e2e

// Our handler's side of WebSockets, against Pushpin's own proxy: the real
// condure, pushpin-proxy and zurl with our pushpin-handler, an over_http
// route to a small WebSocket-over-HTTP backend, and gorilla/websocket
// clients. The backend subscribes every connection to channel x on OPEN
// and turns each text message a client sends into the same message sent
// back to it, so a client sending `c:{...}` makes the backend send that
// control message (the test drives control messages from the client side).

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pushpin-go/pushpin/internal/testwait"
	ts "github.com/pushpin-go/pushpin/proto/tnetstring"
	"github.com/pushpin-go/pushpin/proto/zmq"
)

var hwsOursHandlerOnly = tiers{"pushpin+our-handler", realCondure, realProxy, bin("pushpin-handler"), realZurl}

// hwsBackend speaks application/websocket-events and counts the requests
// it gets (a refresh shows as one more).
type hwsBackend struct {
	srv      *httptest.Server
	requests atomic.Int64
}

func hwsNewBackend(t *testing.T) *hwsBackend {
	b := &hwsBackend{}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *hwsBackend) port() int { return b.srv.Listener.Addr().(*net.TCPAddr).Port }

func (b *hwsBackend) serve(w http.ResponseWriter, r *http.Request) {
	b.requests.Add(1)
	body, _ := io.ReadAll(r.Body)
	evs, err := parseWOHEvents(body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	w.Header().Set("Content-Type", "application/websocket-events")
	var out []byte
	for _, ev := range evs {
		switch ev.typ {
		case "OPEN":
			w.Header().Set("Sec-WebSocket-Extensions", `grip; message-prefix=""`)
			out = appendWOHEvent(out, "OPEN", nil)
			out = appendWOHEvent(out, "TEXT", []byte(`c:{"type":"subscribe","channel":"x"}`))
		case "TEXT":
			out = appendWOHEvent(out, "TEXT", ev.content)
		case "CLOSE":
			out = appendWOHEvent(out, "CLOSE", ev.content)
		}
	}
	_, _ = w.Write(out)
}

// hwsClient is a gorilla/websocket client whose messages are read into a
// channel by one goroutine.
type hwsClient struct {
	c    *websocket.Conn
	msgs chan hwsMsg
}

type hwsMsg struct {
	typ  int
	data string
	err  error // the read error that ended the connection (last)
}

func hwsDial(s *stack, path string) (*hwsClient, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	c, resp, err := d.Dial(fmt.Sprintf("ws://127.0.0.1:%d%s", s.HTTPPort, path), nil)
	if err != nil {
		if resp != nil {
			err = fmt.Errorf("%w (status %d)", err, resp.StatusCode)
		}
		return nil, err
	}
	cl := &hwsClient{c: c, msgs: make(chan hwsMsg, 256)}
	go func() {
		defer close(cl.msgs)
		for {
			typ, data, err := c.ReadMessage()
			if err != nil {
				cl.msgs <- hwsMsg{err: err}
				return
			}
			cl.msgs <- hwsMsg{typ: typ, data: string(data)}
		}
	}()
	return cl, nil
}

// hwsOpen dials, retrying while the stack is still connecting.
func hwsOpen(t *testing.T, s *stack, path string) *hwsClient {
	t.Helper()
	var cl *hwsClient
	testwait.For(t, 15*time.Second, func() error {
		var err error
		cl, err = hwsDial(s, path)
		return err
	})
	t.Cleanup(func() { cl.c.Close() })
	return cl
}

// next returns the next message, failing after d. Messages starting with
// "~" are skipped: hwsPublishUntil publishes them until one arrives, so
// more may follow.
func (cl *hwsClient) next(t *testing.T, d time.Duration) hwsMsg {
	t.Helper()
	end := time.After(d)
	for {
		select {
		case m, ok := <-cl.msgs:
			if !ok {
				t.Fatal("connection ended")
			}
			if m.err == nil && strings.HasPrefix(m.data, "~") {
				continue
			}
			return m
		case <-end:
			t.Fatalf("no message within %v", d)
		}
	}
}

// until reads messages until one equals want (others, e.g. earlier
// probes, are skipped), failing after d.
func (cl *hwsClient) until(t *testing.T, want string, d time.Duration) hwsMsg {
	t.Helper()
	end := time.Now().Add(d)
	for {
		m := cl.next(t, time.Until(end))
		if m.err != nil {
			t.Fatalf("waiting for %q: %v", want, m.err)
		}
		if m.data == want {
			return m
		}
	}
}

func (cl *hwsClient) say(t *testing.T, text string) {
	t.Helper()
	if err := cl.c.WriteMessage(websocket.TextMessage, []byte(text)); err != nil {
		t.Fatal(err)
	}
}

// hwsPublish publishes a ws-message format to channel.
func hwsPublish(t *testing.T, s *stack, channel, format string, meta string) {
	t.Helper()
	if meta == "" {
		meta = "{}"
	}
	s.publish(t, fmt.Sprintf(`{"items":[{"channel":%q,"meta":%s,"formats":{"ws-message":%s}}]}`, channel, meta, format))
}

// hwsSync makes sure every control message cl's backend sent before is
// handled by the handler: it subscribes cl to a channel of its own and
// publishes to it until a message arrives (control messages of one session
// reach the handler in order).
func hwsSync(t *testing.T, s *stack, cl *hwsClient, tag string) {
	t.Helper()
	ch := "sync-" + tag
	cl.say(t, `c:{"type":"subscribe","channel":"`+ch+`"}`)
	hwsPublishUntil(t, s, cl, ch, "~synced "+tag)
}

// hwsPublishUntil publishes text (which must start with "~") to channel
// until cl receives it (a subscription may take a moment to reach the
// handler).
func hwsPublishUntil(t *testing.T, s *stack, cl *hwsClient, channel, text string) {
	t.Helper()
	got := make(chan error, 1)
	go func() {
		for m := range cl.msgs {
			if m.err != nil {
				got <- m.err
				return
			}
			if m.data == text {
				got <- nil
				return
			}
		}
		got <- errors.New("connection ended")
	}()
	deadline := time.After(15 * time.Second)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		hwsPublish(t, s, channel, fmt.Sprintf(`{"content":%q}`, text), "")
		select {
		case err := <-got:
			if err != nil {
				t.Fatalf("waiting for %q: %v", text, err)
			}
			return
		case <-deadline:
			t.Fatalf("%q never arrived", text)
		case <-tick.C:
		}
	}
}

// hwsRefresh sends the zrpc refresh command to the handler.
func hwsRefresh(t *testing.T, s *stack, args map[string]any) map[string]any {
	t.Helper()
	req, err := zmq.New(zmq.Req, zmq.Options{RecvTimeout: 15000})
	if err != nil {
		t.Fatal(err)
	}
	defer req.Close()
	if err := req.Connect(fmt.Sprintf("tcp://127.0.0.1:%d", s.CommandPort)); err != nil {
		t.Fatal(err)
	}
	b, _ := ts.Encode(map[string]any{"id": "r1", "method": "refresh", "args": args})
	if err := req.Send(b); err != nil {
		t.Fatal(err)
	}
	msg, err := req.Recv()
	if err != nil {
		t.Fatalf("refresh: no reply: %v", err)
	}
	v, err := ts.Decode(msg[0])
	m, _ := v.(map[string]any)
	if err != nil || m == nil {
		t.Fatalf("refresh reply %q", msg[0])
	}
	return m
}

func TestHWSPublishToWebSockets(t *testing.T) {
	forEachStack(t, func(t *testing.T, tr tiers) {
		be := hwsNewBackend(t)
		s := tr.start(t, fmt.Sprintf("* localhost:%d,over_http", be.port()))
		s.waitReady(t, "/")
		a, b := hwsOpen(t, s, "/ws"), hwsOpen(t, s, "/ws")
		hwsPublishUntil(t, s, a, "x", "~probe-a")
		hwsPublishUntil(t, s, b, "x", "~probe-b")

		// text and binary reach both
		hwsPublish(t, s, "x", `{"content":"hello"}`, "")
		hwsPublish(t, s, "x", fmt.Sprintf(`{"content-bin":%q}`, base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 255})), "")
		for _, cl := range []*hwsClient{a, b} {
			if m := cl.until(t, "hello", 10*time.Second); m.typ != websocket.TextMessage {
				t.Fatalf("hello as type %d", m.typ)
			}
			if m := cl.next(t, 10*time.Second); m.typ != websocket.BinaryMessage || m.data != "\x00\x01\x02\xff" {
				t.Fatalf("binary: %+v", m)
			}
		}

		// a second channel, then unsubscribe from x
		a.say(t, `c:{"type":"subscribe","channel":"y"}`)
		hwsPublishUntil(t, s, a, "y", "~on y")
		a.say(t, `c:{"type":"unsubscribe","channel":"x"}`)
		hwsSync(t, s, a, "a1")
		hwsPublish(t, s, "x", `{"content":"x only"}`, "")
		hwsPublish(t, s, "y", `{"content":"y only"}`, "")
		if m := a.next(t, 10*time.Second); m.data != "y only" {
			t.Fatalf("after unsubscribing x, a got %+v", m)
		}
		b.until(t, "x only", 10*time.Second)

		// set-meta and session are accepted; skip-self uses the meta
		b.say(t, `c:{"type":"session","id":"sess-b"}`)
		b.say(t, `c:{"type":"set-meta","name":"user","value":"bob"}`)
		b.say(t, `c:{"type":"subscribe","channel":"room","filters":["skip-self"]}`)
		hwsSync(t, s, b, "b1")
		hwsPublish(t, s, "room", `{"content":"from bob"}`, `{"sender":"bob"}`)
		hwsPublish(t, s, "room", `{"content":"from alice"}`, `{"sender":"alice"}`)
		if m := b.next(t, 10*time.Second); m.data != "from alice" {
			t.Fatalf("skip-self: b got %+v", m)
		}

		// a malformed control message is ignored and the client stays
		// connected past the ~8 s after which Pushpin's handler would have
		// had it dropped: a send-delayed of 10 s queued right behind it
		// arrives.
		a.say(t, `c:{"type":`)
		a.say(t, `c:{"type":"send-delayed","content":"still here","timeout":10}`)
		hwsPublish(t, s, "y", `{"content":"meanwhile"}`, "")
		a.until(t, "meanwhile", 10*time.Second)
		a.until(t, "still here", 15*time.Second)

		// close action: code and reason reach the client
		hwsPublish(t, s, "x", `{"action":"close","code":4005,"reason":"bye"}`, "")
		for {
			m := b.next(t, 10*time.Second)
			if m.err == nil {
				continue
			}
			var ce *websocket.CloseError
			if !errors.As(m.err, &ce) || ce.Code != 4005 || ce.Text != "bye" {
				t.Fatalf("close: %v", m.err)
			}
			break
		}
	}, allOurs, hwsOursHandlerOnly)
}

func TestHWSKeepAliveDelayedRefresh(t *testing.T) {
	forEachStack(t, func(t *testing.T, tr tiers) {
		be := hwsNewBackend(t)
		s := tr.start(t, fmt.Sprintf("* localhost:%d,over_http", be.port()))
		s.waitReady(t, "/")
		cl := hwsOpen(t, s, "/ws")
		hwsPublishUntil(t, s, cl, "x", "~probe")

		// keep-alive: the proxy asks (need-keep-alive), the handler sends it
		cl.say(t, `c:{"type":"keep-alive","content":"ka!","timeout":1}`)
		cl.until(t, "ka!", 10*time.Second)
		cl.say(t, `c:{"type":"keep-alive"}`)

		// send-delayed, and flush-delayed sending it at once
		start := time.Now()
		cl.say(t, `c:{"type":"send-delayed","content":"delayed","timeout":2}`)
		cl.until(t, "delayed", 10*time.Second)
		if time.Since(start) < 1500*time.Millisecond {
			t.Fatalf("delayed message after %v", time.Since(start))
		}
		cl.say(t, `c:{"type":"send-delayed","content":"flushed","timeout":60}`)
		cl.say(t, `c:{"type":"flush-delayed"}`)
		cl.until(t, "flushed", 10*time.Second)

		// refresh of the channel's sessions makes the proxy call the backend
		before := be.requests.Load()
		if m := hwsRefresh(t, s, map[string]any{"channel": "x"}); m["success"] != true {
			t.Fatalf("refresh: %v", m)
		}
		testwait.For(t, 10*time.Second, func() error {
			if be.requests.Load() == before {
				return errors.New("refresh made no request to the backend")
			}
			return nil
		})
		if m := hwsRefresh(t, s, map[string]any{"cid": "no-such-cid"}); m["success"] != false {
			t.Fatalf("refresh of an unknown cid: %v", m)
		}
	}, allOurs, hwsOursHandlerOnly)
}

// 1,000 WebSocket clients subscribed to one channel each get one publish.
func TestHWSFanout(t *testing.T) {
	forEachStack(t, func(t *testing.T, tr tiers) {
		const n = 1000
		be := hwsNewBackend(t)
		s := tr.start(t, fmt.Sprintf("* localhost:%d,over_http", be.port()))
		s.waitReady(t, "/")
		clients := make([]*hwsClient, n)
		for i := range clients {
			clients[i] = hwsOpen(t, s, "/ws")
		}
		// Probe until every client has seen a probe: all are subscribed.
		var ready atomic.Int64
		var wg sync.WaitGroup
		for _, cl := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for m := range cl.msgs {
					if m.err != nil {
						return
					}
					if strings.HasPrefix(m.data, "~probe") {
						ready.Add(1)
						return
					}
				}
			}()
		}
		// A probe at most every 200 ms: each one is a message to every
		// client already subscribed.
		var lastProbe time.Time
		testwait.For(t, 30*time.Second, func() error {
			if got := ready.Load(); got < n {
				if time.Since(lastProbe) >= 200*time.Millisecond {
					hwsPublish(t, s, "x", `{"content":"~probe"}`, "")
					lastProbe = time.Now()
				}
				return fmt.Errorf("only %d of %d clients subscribed", got, n)
			}
			return nil
		})
		wg.Wait()
		hwsPublish(t, s, "x", `{"content":"to everyone"}`, "")
		var got atomic.Int64
		for _, cl := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				timeout := time.After(20 * time.Second)
				for {
					select {
					case m, ok := <-cl.msgs:
						if !ok || m.err != nil {
							return
						}
						if m.data == "to everyone" {
							got.Add(1)
							return
						}
					case <-timeout:
						return
					}
				}
			}()
		}
		wg.Wait()
		if got.Load() != n {
			t.Fatalf("%d of %d clients got the publish", got.Load(), n)
		}
	}, allOurs, hwsOursHandlerOnly)
}
