package woh_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushpin-go/pushpin/internal/freeport"
	"github.com/pushpin-go/pushpin/internal/testwait"
	"github.com/pushpin-go/pushpin/proto/wsevents"
	"github.com/pushpin-go/pushpin/proto/zhttp"
	"github.com/pushpin-go/pushpin/proxy/internal/woh"
)

// backend is a real WebSocket-over-HTTP server: a net/http handler that
// reads application/websocket-events and answers per message.
type backend struct {
	addr string
	srv  *http.Server
	hold chan struct{} // a "hold" message waits for it

	mu   sync.Mutex
	reqs []seen
	acc  accState // the /acc connection
}

// seen is one request as the backend got it.
type seen struct {
	path   string
	header http.Header
	events []wsevents.Event
}

func startBackend(t *testing.T, addr string) *backend {
	t.Helper()
	b := &backend{addr: addr, hold: make(chan struct{})}
	b.listen(t)
	return b
}

func (b *backend) listen(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	b.srv = &http.Server{Handler: http.HandlerFunc(b.serve)}
	go func() { _ = b.srv.Serve(ln) }()
	t.Cleanup(func() { b.srv.Close() })
}

func (b *backend) requests() []seen {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]seen(nil), b.reqs...)
}

func (b *backend) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	evs, err := wsevents.Parse(body, nil)
	if err != nil || r.Header.Get("Content-Type") != wsevents.ContentType || r.Method != "POST" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	b.mu.Lock()
	b.reqs = append(b.reqs, seen{path: r.URL.Path, header: r.Header.Clone(), events: evs})
	b.mu.Unlock()
	if r.URL.Path == "/acc" {
		b.serveAccepting(w, r, evs)
		return
	}
	if r.URL.Path == "/reject" {
		w.Header().Set("X-Why", "no")
		http.Error(w, "go away", http.StatusForbidden)
		return
	}
	h := w.Header()
	h.Set("Content-Type", wsevents.ContentType)
	var out []byte
	for _, e := range evs {
		msg := string(e.Content)
		switch {
		case e.Type == wsevents.Open:
			h.Set("Sec-WebSocket-Extensions", `grip; message-prefix=""`)
			h.Set("Set-Meta-User", "alice")
			h.Set("Sec-WebSocket-Protocol", "chat")
			out = wsevents.Append(out, wsevents.Open, nil)
			out = wsevents.Append(out, wsevents.Text, []byte(`c:{"type":"subscribe","channel":"room"}`))
			out = wsevents.Append(out, wsevents.Text, []byte("welcome"))
		case e.Type == wsevents.Close:
			code, reason := wsevents.CloseCode(e.Content)
			out = wsevents.AppendClose(out, code, reason)
		case e.Type != wsevents.Text:
		case msg == "hold":
			<-b.hold
		case msg == "who":
			out = wsevents.Append(out, wsevents.Text, []byte("you are "+r.Header.Get("Meta-User")))
		case strings.HasPrefix(msg, "set:"):
			h.Set("Set-Meta-User", msg[4:])
		case msg == "ka":
			h.Set("Keep-Alive-Interval", "20")
		case msg == "close-me":
			out = wsevents.AppendClose(out, 4000, "bye")
		default:
			out = wsevents.Append(out, wsevents.Text, []byte("echo: "+msg))
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(out)))
	_, _ = w.Write(out) // a write error is the proxy side hanging up
}

// driver is the caller the package expects, in miniature: it serializes
// the Conn with a mutex, makes the requests with net/http, owns a clock the
// test can move forward (no 20 s waits), and hands client-facing actions to
// the test.
type driver struct {
	t      *testing.T
	url    string
	client *http.Client
	out    chan woh.Action

	mu     sync.Mutex
	c      *woh.Conn
	offset time.Duration
	signs  int
}

func newDriver(t *testing.T, url string) *driver {
	d := &driver{
		t:   t,
		url: url,
		// No pooled connections: a restarted backend must be dialled anew.
		client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second},
		out:    make(chan woh.Action, 100),
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	c, acts := woh.New(woh.Config{
		Headers: zhttp.Headers{{Name: "Sec-WebSocket-Key", Value: "k"}, {Name: "Upgrade", Value: "websocket"}},
		Sign: func(h zhttp.Headers) zhttp.Headers {
			d.signs++
			return append(h, zhttp.Header{Name: "Grip-Sig", Value: "sig-" + strconv.Itoa(d.signs)})
		},
		Jitter: func() time.Duration { return 0 },
	})
	d.c = c
	d.run(acts)
	return d
}

func (d *driver) now() time.Time { return time.Now().Add(d.offset) }

// run executes actions; d.mu is held.
func (d *driver) run(acts []woh.Action) {
	for _, a := range acts {
		switch a := a.(type) {
		case woh.SendRequest:
			go d.do(a)
		case woh.CreditClient:
		default:
			d.out <- a
		}
	}
}

func (d *driver) do(req woh.SendRequest) {
	hr, err := http.NewRequest("POST", d.url, bytes.NewReader(req.Body))
	if err != nil {
		panic(err)
	}
	for _, h := range req.Headers {
		hr.Header.Add(h.Name, h.Value)
	}
	hr.ContentLength = int64(len(req.Body))
	resp, err := d.client.Do(hr)
	if err != nil {
		var op *net.OpError
		reached := !(errors.As(err, &op) && op.Op == "dial")
		d.mu.Lock()
		d.run(d.c.RequestFailed(d.now(), reached))
		d.mu.Unlock()
		return
	}
	defer resp.Body.Close()
	var h zhttp.Headers
	for k, vs := range resp.Header {
		for _, v := range vs {
			h = append(h, zhttp.Header{Name: k, Value: v})
		}
	}
	d.mu.Lock()
	d.run(d.c.ResponseHead(resp.StatusCode, strings.TrimPrefix(resp.Status, strconv.Itoa(resp.StatusCode)+" "), h))
	d.mu.Unlock()
	buf := make([]byte, 7) // small chunks: the Conn assembles the body
	for {
		n, err := resp.Body.Read(buf)
		d.mu.Lock()
		d.run(d.c.ResponseBody(d.now(), buf[:n], err != nil))
		d.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (d *driver) input(f func(c *woh.Conn) []woh.Action) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.run(f(d.c))
}

// advance moves the clock forward and fires what is due.
func (d *driver) advance(by time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.offset += by
	d.run(d.c.Tick(d.now()))
}

func (d *driver) deadlineIn() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	if dl := d.c.NextDeadline(); !dl.IsZero() {
		return dl.Sub(d.now())
	}
	return 0
}

func (d *driver) next() woh.Action {
	d.t.Helper()
	select {
	case a := <-d.out:
		return a
	case <-time.After(5 * time.Second):
		d.t.Fatal("no action within 5 s")
		return nil
	}
}

func (d *driver) expect(want woh.Action) {
	d.t.Helper()
	got := d.next()
	if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", want) {
		d.t.Fatalf("got %#v\nwant %#v", got, want)
	}
}

func deliver(s string) woh.Action { return woh.Deliver{Type: wsevents.Text, Data: []byte(s)} }

func (b *backend) waitRequests(t *testing.T, n int) []seen {
	t.Helper()
	testwait.For(t, 5*time.Second, func() error {
		if got := len(b.requests()); got < n {
			return fmt.Errorf("backend has %d requests, want %d", got, n)
		}
		return nil
	})
	return b.requests()
}

func TestIntegrationFullSession(t *testing.T) {
	port, err := freeport.Get()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	b := startBackend(t, addr)
	d := newDriver(t, "http://"+addr+"/ws")

	// OPEN: accepted with the backend's headers, GRIP on, events after OPEN.
	acc, ok := d.next().(woh.Accept)
	if !ok || !acc.Grip || acc.Prefix != "" || acc.Headers.Get("Sec-WebSocket-Protocol") != "chat" || acc.Headers.Has("Set-Meta-User") {
		t.Fatalf("accept %#v", acc)
	}
	d.expect(woh.Control{JSON: []byte(`{"type":"subscribe","channel":"room"}`)})
	d.expect(deliver("welcome"))
	open := b.requests()[0]
	cid := open.header.Get("Connection-Id")
	if open.header.Get("Sec-WebSocket-Extensions") != "grip" || open.header.Get("Upgrade") != "" || len(cid) != 36 {
		t.Fatalf("OPEN headers %v", open.header)
	}

	// Echo, with the meta set by the OPEN response.
	d.input(func(c *woh.Conn) []woh.Action { return c.ClientMessage(wsevents.Text, []byte("hello")) })
	d.expect(deliver("echo: hello"))
	if h := b.requests()[1].header; h.Get("Meta-User") != "alice" || h.Get("Connection-Id") != cid {
		t.Fatalf("second request headers %v", h)
	}

	// Meta round-trip: Set-Meta-User changes what comes back.
	d.input(func(c *woh.Conn) []woh.Action { return c.ClientMessage(wsevents.Text, []byte("set:bob")) })
	b.waitRequests(t, 3)
	d.input(func(c *woh.Conn) []woh.Action { return c.ClientMessage(wsevents.Text, []byte("who")) })
	d.expect(deliver("you are bob"))

	// Batching: five messages sent while a request is held go in one body.
	d.input(func(c *woh.Conn) []woh.Action { return c.ClientMessage(wsevents.Text, []byte("hold")) })
	n := len(b.waitRequests(t, 5))
	for i := 1; i <= 5; i++ {
		d.input(func(c *woh.Conn) []woh.Action { return c.ClientMessage(wsevents.Text, []byte("m"+strconv.Itoa(i))) })
	}
	b.hold <- struct{}{}
	for i := 1; i <= 5; i++ {
		d.expect(deliver("echo: m" + strconv.Itoa(i)))
	}
	if batch := b.requests()[n]; len(batch.events) != 5 {
		t.Fatalf("batch of %d events", len(batch.events))
	}

	// Keep-alive: the interval asked for brings an empty request when due.
	d.input(func(c *woh.Conn) []woh.Action { return c.ClientMessage(wsevents.Text, []byte("ka")) })
	n = len(b.waitRequests(t, n+2))
	testwait.For(t, 5*time.Second, func() error {
		if in := d.deadlineIn(); in < 19*time.Second || in > 20*time.Second {
			return fmt.Errorf("keep-alive due in %v", in)
		}
		return nil
	})
	d.advance(20 * time.Second)
	if ka := b.waitRequests(t, n+1)[n]; len(ka.events) != 0 || ka.header.Get("Content-Length") != "0" {
		t.Fatalf("keep-alive request %+v", ka)
	}
	n++

	// Retry: the backend goes away; a refused request is retried after
	// 1 s with fresh headers, same body, once it is back.
	testwait.For(t, 5*time.Second, func() error {
		if d.deadlineIn() == 0 {
			return errors.New("keep-alive not re-armed")
		}
		return nil
	})
	b.srv.Close()
	d.input(func(c *woh.Conn) []woh.Action { return c.ClientMessage(wsevents.Text, []byte("again")) })
	testwait.For(t, 5*time.Second, func() error {
		if in := d.deadlineIn(); in <= 0 || in > time.Second {
			return fmt.Errorf("retry due in %v", in)
		}
		return nil
	})
	b.listen(t)
	d.advance(time.Second)
	d.expect(deliver("echo: again"))
	retried := b.requests()[n]
	d.mu.Lock()
	signs := d.signs
	d.mu.Unlock()
	if retried.header.Get("Grip-Sig") != "sig-"+strconv.Itoa(signs) || len(retried.events) != 1 {
		t.Fatalf("retried request %v %v", retried.header, retried.events)
	}

	// Backend-initiated close; the client's echo goes as a final CLOSE.
	d.input(func(c *woh.Conn) []woh.Action { return c.ClientMessage(wsevents.Text, []byte("close-me")) })
	d.expect(woh.CloseClient{Code: 4000, Reason: "bye"})
	d.input(func(c *woh.Conn) []woh.Action { return c.ClientClose(4000, "bye") })
	d.expect(woh.Finished{})
	last := b.requests()[len(b.requests())-1]
	if len(last.events) != 1 || last.events[0].Type != wsevents.Close || string(last.events[0].Content) != "\x0f\xa0bye" {
		t.Fatalf("final request %+v", last.events)
	}
}

func TestIntegrationClientCloseDisconnectReject(t *testing.T) {
	port, err := freeport.Get()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	b := startBackend(t, addr)
	opened := func() *driver {
		d := newDriver(t, "http://"+addr+"/ws")
		if _, ok := d.next().(woh.Accept); !ok {
			t.Fatal("not accepted")
		}
		d.next() // control
		d.next() // welcome
		return d
	}

	// Client-initiated close, answered by the backend: a clean close.
	d := opened()
	d.input(func(c *woh.Conn) []woh.Action { return c.ClientClose(1000, "done") })
	d.expect(woh.CloseClient{Code: 1000, Reason: "done"})
	d.expect(woh.Finished{})

	// Client vanished: DISCONNECT alone, response ignored.
	d = opened()
	d.input(func(c *woh.Conn) []woh.Action { return c.ClientGone() })
	d.expect(woh.Finished{})
	if last := b.requests()[len(b.requests())-1]; len(last.events) != 1 || last.events[0].Type != wsevents.Disconnect {
		t.Fatalf("last request %+v", last.events)
	}

	// A non-200 answer to OPEN rejects the handshake with it.
	d = newDriver(t, "http://"+addr+"/reject")
	r, ok := d.next().(woh.Reject)
	if !ok || r.Code != 403 || r.Reason != "Forbidden" || string(r.Body) != "go away\n" || r.Headers.Get("X-Why") != "no" {
		t.Fatalf("reject %#v", r)
	}
	d.expect(woh.Finished{})

	// Nothing listening: the OPEN fails over.
	free, err := freeport.Get()
	if err != nil {
		t.Fatal(err)
	}
	d = newDriver(t, "http://127.0.0.1:"+strconv.Itoa(free)+"/ws")
	if f, ok := d.next().(woh.OpenFailed); !ok || !f.TryNext {
		t.Fatalf("open failed %#v", f)
	}
}
